import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";
import { createAdminApp } from "../core/admin/app.ts";
import { adminFixture, stopQuietly } from "./_fixtures/admin.ts";
import { recording, recordings } from "./_fixtures/plugins.ts";
import { waitFor } from "./_fixtures/runtime.ts";
import type { MemoryBroker } from "../plugins/memory/_broker.ts";

const BASE = `
devices:
  boiler: { type: fixed, config: { count: 0 } }
brokers:
  mem: { type: memory }
handlers:
  rec: { type: record, config: { key: admin } }
pipelines:
  main:
    from: [boiler]
    via: mem
    handlers: [rec]
    batch: { max_samples: 100, max_wait: 5ms }
`;

const post = (body: string, type = "application/json", headers: Record<string, string> = {}) => ({
  method: "POST",
  body,
  headers: { "content-type": type, ...headers },
});

Deno.test("healthz answers 200", async () => {
  const { app, runtime } = await adminFixture(BASE);
  const health = await app.request("/healthz");
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
  await stopQuietly(runtime);
});

Deno.test("readyz is 503 naming what is not ready, and 200 once running", async () => {
  const { app, runtime } = await adminFixture(BASE);
  const before = await app.request("/readyz");
  assert.equal(before.status, 503);
  const body = await before.json();
  assert.deepEqual(body.not_ready.map((c: { name: string }) => c.name), ["pipeline:main"]);
  runtime.start();
  const after = await app.request("/readyz");
  assert.equal(after.status, 200);
  await runtime.stop();
});

Deno.test("readyz is 503 when a broker is unreachable", async () => {
  const { app, runtime } = await adminFixture(`
devices: { d: { type: fixed, config: { count: 0 } } }
brokers: { down: { type: unreachable } }
pipelines: { main: { from: [d], via: down } }
`);
  runtime.start();
  const res = await app.request("/readyz");
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.not_ready[0].name, "broker:down");
  assert.match(body.not_ready[0].reason, /Connection refused/);
  await runtime.stop();
});

Deno.test("POST /api/v1/samples accepts one sample, an array and NDJSON", async () => {
  recordings.clear();
  const { app, runtime } = await adminFixture(BASE);
  runtime.start();
  const one = await app.request(
    "/api/v1/samples",
    post(JSON.stringify({ device: "boiler", metric: "temperature", value: 1, seq: 1 })),
  );
  assert.equal(one.status, 202);
  assert.deepEqual(await one.json(), { accepted: 1 });
  const many = await app.request(
    "/api/v1/samples",
    post(JSON.stringify([2, 3].map((seq) => ({ device: "boiler", metric: "t", value: seq, seq })))),
  );
  assert.deepEqual(await many.json(), { accepted: 2 });
  const nd = await app.request(
    "/api/v1/samples",
    post(
      '{"device":"boiler","metric":"t","value":4,"seq":4}\n\n{"device":"boiler","metric":"t","value":5,"seq":5}\n',
      "application/x-ndjson",
    ),
  );
  assert.deepEqual(await nd.json(), { accepted: 2 });
  await waitFor(() => recording("admin").seen.length >= 5, "5 samples handled");
  await runtime.stop();
  assert.deepEqual(recording("admin").seen.map((s) => s.split("/")[2]).sort(), [
    "1",
    "2",
    "3",
    "4",
    "5",
  ]);
});

Deno.test("invalid samples get 400 with each item's index and reason, and nothing is enqueued", async () => {
  const { app, runtime } = await adminFixture(BASE);
  const queue = runtime.pipelines.get("main")!.queue!;
  const res = await app.request(
    "/api/v1/samples",
    post(JSON.stringify([
      { device: "boiler", metric: "t", value: 1 },
      { device: "boiler", metric: "t", value: "hot" },
      { device: "", metric: "t", value: 1 },
      { device: "boiler", metric: "t", value: 1, ts: "yesterday" },
      { device: "nobody", metric: "t", value: 1 },
    ])),
  );
  assert.equal(res.status, 400);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const body = await res.json();
  assert.equal(body.status, 400);
  assert.deepEqual(body.invalid, [
    { index: 1, reason: '"value" must be a finite number, not the string "hot"' },
    { index: 2, reason: '"device" must be a non-empty string' },
    {
      index: 3,
      reason: '"ts" must be a finite number of milliseconds since the epoch, from 1970 to 9999',
    },
  ]);
  assert.equal(queue.size, 0, "nothing from a rejected request is enqueued");
  const unknown = await app.request(
    "/api/v1/samples",
    post(
      JSON.stringify([{ device: "boiler", metric: "t", value: 1 }, {
        device: "nobody",
        metric: "t",
        value: 1,
      }]),
    ),
  );
  assert.equal(unknown.status, 400);
  assert.match((await unknown.json()).invalid[0].reason, /Device "nobody" belongs to no pipeline/);
  assert.equal(queue.size, 0);
  const badNd = await app.request(
    "/api/v1/samples",
    post('{"device":"boiler","metric":"t","value":1}\n{oops\n', "application/x-ndjson"),
  );
  assert.deepEqual((await badNd.json()).invalid, [{ index: 1, reason: "Line is not valid JSON" }]);
  assert.equal(queue.size, 0);
  await stopQuietly(runtime);
});

/** `text` compressed with `format`. */
async function compressed(text: string, format: CompressionFormat): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream(format));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("gzip and deflate bodies are accepted; bad, unknown and expanding ones are refused", async () => {
  const { app, runtime } = await adminFixture(`${BASE}\nadmin: { max_body: 4096 }\n`);
  const queue = runtime.pipelines.get("main")!.queue!;
  const send = (body: Uint8Array | string, encoding: string, type = "application/json") =>
    app.request("/api/v1/samples", {
      method: "POST",
      body: body as BodyInit,
      headers: { "content-type": type, "content-encoding": encoding },
    });
  const three = JSON.stringify(
    [1, 2, 3].map((value) => ({ device: "boiler", metric: "t", value })),
  );
  const gzip = await send(await compressed(three, "gzip"), "gzip");
  assert.equal(gzip.status, 202);
  assert.deepEqual(await gzip.json(), { accepted: 3 });
  const nd =
    '{"device":"boiler","metric":"t","value":4}\n{"device":"boiler","metric":"t","value":5}\n';
  const deflate = await send(await compressed(nd, "deflate"), "Deflate", "application/x-ndjson");
  assert.equal(deflate.status, 202);
  assert.equal(queue.size, 5);

  const corrupt = await send(new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]), "gzip");
  assert.equal(corrupt.status, 400);
  assert.match((await corrupt.json()).detail, /^Body is not valid gzip/);
  const plainAsGzip = await send(three, "gzip");
  assert.equal(plainAsGzip.status, 400);
  const brotli = await send(three, "br");
  assert.equal(brotli.status, 415);
  assert.match((await brotli.json()).detail, /not "br"/);
  // 200 KB of samples compress to far below the limit but expand past it.
  const many = JSON.stringify(
    Array.from({ length: 5000 }, () => ({ device: "boiler", metric: "t", value: 1 })),
  );
  const bomb = await compressed(many, "gzip");
  assert.ok(bomb.length < 4096, `compressed to ${bomb.length} bytes`);
  const expanded = await send(bomb, "gzip");
  assert.equal(expanded.status, 413);
  assert.match((await expanded.json()).detail, /^Decompressed bodies are limited to 4096 bytes/);
  assert.equal(queue.size, 5, "nothing from a refused body was enqueued");
  await stopQuietly(runtime);
});

Deno.test("InfluxDB line protocol is accepted as text/plain, so Telegraf can post to it", async () => {
  const { app, runtime } = await adminFixture(BASE);
  const queue = runtime.pipelines.get("main")!.queue!;
  const lines = [
    'boiler,site=north temperature=71.5,pressure=2i,status="ok" 1700000000000',
    "modbus,device=boiler,host=plc1 humidity=40",
  ].join("\n");
  const ok = await app.request(
    "/api/v1/samples?precision=ms",
    post(lines, "text/plain; charset=utf-8"),
  );
  assert.equal(ok.status, 202);
  assert.deepEqual(await ok.json(), { accepted: 3, skipped_fields: 1 });
  assert.equal(queue.size, 3);

  const bad = await app.request("/api/v1/samples", post("boiler t=1\nboiler t=oops", "text/plain"));
  assert.equal(bad.status, 400);
  assert.deepEqual((await bad.json()).invalid, [
    { index: 1, reason: 'Field value "oops" is not a number, boolean or string' },
  ]);
  const precision = await app.request(
    "/api/v1/samples?precision=h",
    post("boiler t=1", "text/plain"),
  );
  assert.equal(precision.status, 400);
  assert.match((await precision.json()).detail, /Precision must be one of ns, us, ms, s, not "h"/);
  assert.equal(queue.size, 3, "nothing from refused bodies");
  await stopQuietly(runtime);
});

Deno.test("malformed JSON, wrong media type and oversized bodies get problem answers", async () => {
  const { app, runtime } = await adminFixture(`${BASE}\nadmin: { max_body: 2048 }\n`);
  const bad = await app.request("/api/v1/samples", post("{not json"));
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).detail, /^Body is not valid JSON/);
  const empty = await app.request("/api/v1/samples", post("[]"));
  assert.equal(empty.status, 400);
  const xml = await app.request("/api/v1/samples", post("<a/>", "application/xml"));
  assert.equal(xml.status, 415);
  const big = await app.request(
    "/api/v1/samples",
    post(
      JSON.stringify(
        Array.from({ length: 100 }, () => ({ device: "boiler", metric: "t", value: 1 })),
      ),
    ),
  );
  assert.equal(big.status, 413);
  assert.equal(big.headers.get("content-type"), "application/problem+json");
  assert.equal(runtime.pipelines.get("main")!.queue!.size, 0);
  await stopQuietly(runtime);
});

Deno.test("a full hub queue with overflow block answers 503 with Retry-After and takes nothing", async () => {
  const { app, runtime } = await adminFixture(
    BASE.replace(
      "batch: { max_samples: 100, max_wait: 5ms }",
      "hub_queue: { capacity: 3, overflow: block }",
    ),
  );
  const fill = await app.request(
    "/api/v1/samples",
    post(JSON.stringify([1, 2, 3].map((v) => ({ device: "boiler", metric: "t", value: v })))),
  );
  assert.equal(fill.status, 202);
  const res = await app.request(
    "/api/v1/samples",
    post(JSON.stringify({ device: "boiler", metric: "t", value: 4 })),
  );
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("retry-after"), "1");
  assert.equal(runtime.pipelines.get("main")!.queue!.size, 3);
  await stopQuietly(runtime);
});

Deno.test("with a token, routes need it except probes and metrics; ingest tokens only ingest", async () => {
  const { app, runtime } = await adminFixture(
    `${BASE}\nadmin: { token: "\${ADMIN_TOKEN}", ingest_tokens: [device-key-1] }\n`,
    { ADMIN_TOKEN: "s3cret-admin" },
  );
  for (const path of ["/healthz", "/metrics", "/openapi.json"]) {
    assert.equal((await app.request(path)).status, 200, path);
  }
  const denied = await app.request("/api/v1/status");
  assert.equal(denied.status, 401);
  assert.equal(denied.headers.get("content-type"), "application/problem+json");
  const wrong = await app.request("/api/v1/status", { headers: { authorization: "Bearer nope" } });
  assert.equal(wrong.status, 401);
  const ok = await app.request("/api/v1/status", {
    headers: { authorization: "Bearer s3cret-admin" },
  });
  assert.equal(ok.status, 200);
  const deviceOnStatus = await app.request("/api/v1/status", {
    headers: { authorization: "Bearer device-key-1" },
  });
  // A known token without the route's scope is forbidden, not unauthenticated.
  assert.equal(deviceOnStatus.status, 403, "an ingest token is not an admin token");
  const sample = JSON.stringify({ device: "boiler", metric: "t", value: 1 });
  assert.equal((await app.request("/api/v1/samples", post(sample))).status, 401);
  const ingest = await app.request(
    "/api/v1/samples",
    post(sample, "application/json", { authorization: "Bearer device-key-1" }),
  );
  assert.equal(ingest.status, 202);
  // The effective config never shows the secrets.
  const config = await (await app.request("/api/v1/config", {
    headers: { authorization: "Bearer s3cret-admin" },
  })).text();
  assert.ok(!config.includes("s3cret-admin"));
  assert.ok(!config.includes("device-key-1"));
  assert.match(config, /"token":"\*\*\*"/);
  await stopQuietly(runtime);
});

Deno.test("status, devices and device lookup describe the running pipeline", async () => {
  const { app, runtime } = await adminFixture(BASE);
  runtime.start();
  const status = await (await app.request("/api/v1/status")).json();
  assert.equal(status.role, "all");
  assert.equal(status.version, "0.0.0-test");
  assert.equal(status.pipelines[0].name, "main");
  assert.deepEqual(status.pipelines[0].devices, ["boiler"]);
  assert.equal(status.pipelines[0].broker, "mem");
  assert.ok("samples_read" in status.pipelines[0].rates);
  const devices = await (await app.request("/api/v1/devices")).json();
  assert.equal(devices.devices[0].name, "boiler");
  const one = await app.request("/api/v1/devices/boiler");
  assert.equal((await one.json()).type, "fixed");
  assert.equal((await app.request("/api/v1/devices/nope")).status, 404);
  await runtime.stop();
});

Deno.test("tasks and dead letters can be looked up, listed, replayed and purged", async () => {
  recordings.clear();
  const { app, runtime } = await adminFixture(`
devices: { boiler: { type: fixed, config: { count: 3, batch: 1 } } }
brokers: { mem: { type: memory } }
handlers: { bad: { type: flaky, config: { permanent: true, message: Bad payload } } }
pipelines:
  main: { from: [boiler], via: mem, handlers: [bad], batch: { max_samples: 1, max_wait: 1ms } }
`);
  runtime.start();
  const broker = runtime.brokers.get("mem") as MemoryBroker;
  await waitFor(async () => (await broker.depth()).dead === 3, "3 dead letters");
  const page1 = await (await app.request("/api/v1/dlq?limit=2")).json();
  assert.equal(page1.items.length, 2);
  assert.equal(page1.items[0].error.message, "Bad payload");
  assert.ok(page1.cursor);
  const page2 = await (await app.request(`/api/v1/dlq?limit=2&cursor=${page1.cursor}`)).json();
  assert.equal(page2.items.length, 1);
  assert.equal((await app.request("/api/v1/dlq?limit=0")).status, 400);
  const id = page1.items[0].task.id;
  const task = await (await app.request(`/api/v1/tasks/${id}`)).json();
  assert.equal(task.state, "dead_letter");
  assert.equal((await app.request("/api/v1/tasks/nope")).status, 404);
  const noSelector = await app.request("/api/v1/dlq/replay", post("{}"));
  assert.equal(noSelector.status, 400);
  const badBody = await app.request("/api/v1/dlq/replay", post("[1"));
  assert.equal(badBody.status, 400);
  const replay = await app.request("/api/v1/dlq/replay", post(JSON.stringify({ ids: [id] })));
  assert.deepEqual(await replay.json(), { replayed: 1 });
  // Replay resets attempts; the handler still fails, so it is dead-lettered again.
  await waitFor(
    () => runtime.metrics.totals("main").tasks_dead_lettered === 4,
    "the replayed task to fail again",
  );
  assert.equal((await broker.getTask(id))?.state, "dead_letter");
  assert.equal((await app.request("/api/v1/dlq", { method: "DELETE" })).status, 400);
  const purge = await app.request("/api/v1/dlq?all=true", { method: "DELETE" });
  assert.deepEqual(await purge.json(), { purged: 3 });
  await runtime.stop();
});

Deno.test("config/validate returns the same positioned problems as the CLI", async () => {
  const { app, runtime } = await adminFixture(BASE);
  const good = await app.request("/api/v1/config/validate", post(BASE, "application/yaml"));
  assert.equal(good.status, 200);
  assert.equal((await good.json()).valid, true);
  const bad = await app.request(
    "/api/v1/config/validate",
    post("pipelines:\n  main:\n    via: mem\n    workrs: 2\n", "application/yaml"),
  );
  assert.equal(bad.status, 422);
  const body = await bad.json();
  assert.equal(body.valid, false);
  const texts = body.problems.map((p: { text: string }) => p.text);
  assert.ok(
    texts.includes(
      '<input>:4:5 pipelines.main.workrs: Unknown key "workrs"; did you mean "workers"?',
    ),
    texts.join("\n"),
  );
  await stopQuietly(runtime);
});

Deno.test("tap streams filtered samples and disconnecting frees the subscription", async () => {
  const { app, runtime } = await adminFixture(BASE);
  runtime.start();
  const controller = new AbortController();
  const res = await app.request("/api/v1/tap?device=boiler&metric=temperature", {
    signal: controller.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const read = async (until: string) => {
    while (!text.includes(until)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
  };
  await read("event: ready");
  assert.equal(runtime.tap.size, 1);
  await app.request(
    "/api/v1/samples",
    post(JSON.stringify([
      { device: "boiler", metric: "humidity", value: 1 },
      { device: "boiler", metric: "temperature", value: 42 },
    ])),
  );
  await read("event: samples");
  await read("\n\n");
  const data = JSON.parse(text.split("event: samples\ndata: ")[1]!.split("\n")[0]!);
  assert.deepEqual(data.samples.map((s: { value: number }) => s.value), [42]);
  controller.abort();
  await reader.cancel().catch(() => {});
  await waitFor(() => runtime.tap.size === 0, "the subscription to be freed");
  await runtime.stop();
});

Deno.test("errors never leak internals to the client", async () => {
  const { app, runtime } = await adminFixture(BASE);
  runtime.brokers.get("mem")!.getTask = () => Promise.reject(new Error("secret internal detail"));
  const res = await app.request("/api/v1/tasks/x");
  assert.equal(res.status, 500);
  const text = await res.text();
  assert.ok(!text.includes("secret internal detail"));
  assert.ok(!text.includes("at "), "no stack trace");
  assert.equal((await app.request("/nope")).status, 404);
  await stopQuietly(runtime);
});

Deno.test("a real Prometheus scrape over HTTP parses and has the documented series", async () => {
  const { runtime, app } = await adminFixture(BASE);
  runtime.metrics.enableDefaultMetrics();
  runtime.start();
  await app.request(
    "/api/v1/samples",
    post(JSON.stringify({ device: "boiler", metric: "t", value: 1 })),
  );
  await waitFor(() => runtime.metrics.totals("main").tasks_completed >= 1, "a task");
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  try {
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const families = parsePrometheus(text) as Array<{ name: string; type: string }>;
    const names = new Set(families.map((f) => f.name));
    for (
      const name of [
        "telemetry_samples_ingested_total",
        "telemetry_tasks_total",
        "telemetry_task_duration_seconds",
        "telemetry_sample_latency_seconds",
        "telemetry_queue_depth",
        "telemetry_device_up",
        "telemetry_http_requests_total",
        "process_cpu_seconds_total",
      ]
    ) assert.ok(names.has(name), `${name} exposed`);
    // Every sample line is `name{labels} value`.
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      assert.match(
        line,
        /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (-?[0-9.e+-]+|NaN|Nan|\+Inf|-Inf)$/,
        line,
      );
    }
  } finally {
    await server.shutdown();
    await runtime.stop();
  }
});

Deno.test("createAdminApp without reload answers 404 on /api/v1/reload", async () => {
  const { runtime } = await adminFixture(BASE);
  const app = createAdminApp(runtime, {
    registry: (await import("./_fixtures/runtime.ts")).testRegistry(),
    redactedConfig: () => ({}),
    version: "x",
  });
  assert.equal((await app.request("/api/v1/reload", { method: "POST" })).status, 404);
  await stopQuietly(runtime);
});

Deno.test("chunked bodies without Content-Length are limited while they stream", async () => {
  const { app, runtime } = await adminFixture(`${BASE}\nadmin: { max_body: 2048 }\n`);
  const stream = (text: string, parts: number) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        const bytes = new TextEncoder().encode(text);
        const size = Math.ceil(bytes.length / parts);
        for (let i = 0; i < bytes.length; i += size) controller.enqueue(bytes.slice(i, i + size));
        controller.close();
      },
    });
  const small = JSON.stringify({ device: "boiler", metric: "t", value: 1 });
  const ok = await app.request("/api/v1/samples", {
    method: "POST",
    body: stream(small, 3),
    headers: { "content-type": "application/json" },
  });
  assert.equal(ok.status, 202);
  const big = JSON.stringify(
    Array.from({ length: 100 }, () => ({ device: "boiler", metric: "t", value: 1 })),
  );
  const refused = await app.request("/api/v1/samples", {
    method: "POST",
    body: stream(big, 10),
    headers: { "content-type": "application/json" },
  });
  assert.equal(refused.status, 413);
  const declared = await app.request("/api/v1/samples", {
    method: "POST",
    body: big,
    headers: { "content-type": "application/json", "content-length": String(big.length) },
  });
  assert.equal(declared.status, 413, "refused on its Content-Length alone");
  assert.equal(runtime.pipelines.get("main")!.queue!.size, 1);
  await stopQuietly(runtime);
});

Deno.test("GET /api/v1/overview gives the runtime's broker depths, device rates and last values", async () => {
  const { app, runtime } = await adminFixture(BASE);
  runtime.start();
  const overview = async () => await (await app.request("/api/v1/overview")).json();
  const first = await overview();
  assert.deepEqual(first.brokers, [{
    name: "mem",
    pipelines: ["main"],
    shared: false,
    durable: false,
    depth: { queued: 0, inflight: 0, delayed: 0, dead: 0 },
  }]);
  assert.equal(first.devices[0].name, "boiler");
  assert.equal(first.devices[0].rate, 0);
  // The overview's tap is attached now: an ingested sample shows as the device's last value.
  const res = await app.request(
    "/api/v1/samples",
    post(JSON.stringify({ device: "boiler", metric: "level", value: 7, unit: "m", ts: 1 })),
  );
  assert.equal(res.status, 202);
  await res.body?.cancel();
  await waitFor(
    async () => (await overview()).devices[0].last[0]?.value === 7,
    "the last value in the overview",
  );
  assert.deepEqual((await overview()).devices[0].last, [
    { metric: "level", value: 7, unit: "m", ts: 1 },
  ]);
  await runtime.stop();
});

/**
 * `/metrics` as a scraper sees it: every documented counter from start-up,
 * label values that come from request data sanitized and capped.
 */
import assert from "node:assert/strict";
import { adminFixture, stopQuietly } from "./_fixtures/admin.ts";
import { dropSchema, freshSchema, HAVE_POSTGRES, PG_URL } from "./_fixtures/pg_env.ts";
import { needs, run } from "./_fixtures/tools.ts";

const BASE = `
devices:
  boiler: { type: fixed, config: { count: 0 } }
  pump: { type: fixed, config: { count: 0 } }
brokers:
  mem: { type: memory }
handlers:
  rec: { type: record, config: { key: metrics } }
pipelines:
  main:
    from: [boiler, pump]
    via: mem
    handlers: [rec]
    routes: { audit: [rec] }
    hub_queue: { capacity: 200000 }
`;

const post = (body: unknown) => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});

/** Rows `| \`name\` | type | labels | …` of the README's core metrics table. */
async function documentedMetrics(): Promise<
  Array<{ name: string; type: string; labels: string[] }>
> {
  const readme = await Deno.readTextFile(new URL("../docs/metrics.md", import.meta.url));
  const section = readme.split("The built-in handlers")[0]!;
  return [...section.matchAll(/^\| `(telemetry_\w+)` +\| (\w+) +\| ([^|]*)\|/gm)].map((m) => ({
    name: m[1]!,
    type: m[2]!,
    labels: m[3]!.trim() === "" ? [] : m[3]!.trim().split(/, */),
  }));
}

Deno.test("README's metrics table lists exactly the runtime's metrics, types and labels", async () => {
  const { runtime } = await adminFixture(BASE);
  const documented = await documentedMetrics();
  const registered = runtime.metrics.registry.getMetricsAsArray().map((m) => {
    const metric = m as unknown as { name: string; type: string; labelNames: string[] };
    return { name: metric.name, type: metric.type, labels: metric.labelNames };
  });
  assert.deepEqual(
    documented.sort((a, b) => a.name.localeCompare(b.name)),
    registered.sort((a, b) => a.name.localeCompare(b.name)),
  );
  await stopQuietly(runtime);
});

Deno.test("a fresh runtime's /metrics shows every documented counter at 0 for its pipelines, devices and drop reasons", async () => {
  const { app, runtime } = await adminFixture(BASE);
  const text = await (await app.request("/metrics")).text();
  const counters = (await documentedMetrics()).filter((m) => m.type === "counter");
  for (const { name } of counters) {
    if (name === "telemetry_http_requests_total") continue; // routes and statuses: none yet
    assert.match(text, new RegExp(`^${name}\\{[^}]*\\} 0$`, "m"), `${name} at 0`);
  }
  const expected = [
    'telemetry_samples_ingested_total{pipeline="main",device="boiler"} 0',
    'telemetry_samples_ingested_total{pipeline="main",device="pump"} 0',
    'telemetry_samples_processed_total{pipeline="main"} 0',
    'telemetry_tasks_enqueued_total{pipeline="main",type="telemetry.analyze"} 0',
    'telemetry_device_up{device="pump"} 0',
    'telemetry_device_read_errors_total{device="boiler"} 0',
    'telemetry_device_read_errors_total{device="pump"} 0',
    'telemetry_device_restarts_total{device="pump"} 0',
  ];
  for (const reason of ["queue_full_oldest", "queue_full_newest", "closed", "broker_unavailable"]) {
    expected.push(`telemetry_samples_dropped_total{pipeline="main",reason="${reason}"} 0`);
  }
  for (const type of ["telemetry.analyze", "audit"]) {
    for (const outcome of ["completed", "retried", "dead_lettered", "released"]) {
      expected.push(`telemetry_tasks_total{pipeline="main",type="${type}",outcome="${outcome}"} 0`);
    }
  }
  for (const line of expected) assert.ok(text.includes(`${line}\n`), line);
  await stopQuietly(runtime);
});

Deno.test({
  name: "built-in handlers' documented counters exist at 0 from start-up, except those by device",
  ignore: !HAVE_POSTGRES,
  async fn() {
    const schema = freshSchema("metrics");
    const db = `url: "${PG_URL}", schema: ${schema}`;
    const { app, runtime } = await adminFixture(`
devices:
  boiler: { type: fixed, config: { count: 0 } }
brokers:
  mem: { type: memory }
handlers:
  detect: { type: anomaly }
  alert: { type: alert, config: { sinks: [{ type: log }] } }
  agg: { type: aggregate, config: { ${db}, windows: [1m], retention: { 1m: 1d } } }
  db: { type: store, config: { ${db}, retention: 30d } }
pipelines:
  main: { from: [boiler], via: mem, handlers: [detect, alert, agg, db] }
`);
    try {
      const text = await (await app.request("/metrics")).text();
      const readme = await Deno.readTextFile(new URL("../docs/metrics.md", import.meta.url));
      const table = readme.split("The built-in handlers add their own")[1]!;
      const counters = [...table.matchAll(/^\| `(telemetry_\w+)` +\| counter /gm)].map((m) =>
        m[1]!
      );
      assert.ok(counters.length >= 8, `${counters.length} handler counters documented`);
      for (const name of counters) {
        if (name === "telemetry_anomalies_total" || name === "telemetry_anomalies_resolved_total") {
          continue; // labelled by device: no device is known before its first anomaly
        }
        assert.match(text, new RegExp(`^${name}\\{[^}]*\\} 0$`, "m"), `${name} at 0`);
      }
      for (
        const line of [
          'telemetry_store_samples_total{handler="db",result="duplicate"} 0',
          'telemetry_aggregate_tasks_total{handler="agg",result="merged"} 0',
          'telemetry_aggregates_expired_total{handler="agg",window="1m"} 0',
          'telemetry_anomaly_state_evicted_total{handler="detect",state="silence"} 0',
          'telemetry_alerts_total{handler="alert",sink="log",status="resolved",outcome="sent"} 0',
          'telemetry_alerts_skipped_total{handler="alert",reason="cooldown"} 0',
        ]
      ) assert.ok(text.includes(`${line}\n`), line);
    } finally {
      await stopQuietly(runtime);
      await dropSchema(schema);
    }
  },
});

Deno.test("telemetry_queue_depth names the broker, so two pipelines on one broker show its queue once with max by (broker)", async () => {
  // BASE's devices, broker and handler, in two pipelines on the one broker.
  const { app, runtime } = await adminFixture(BASE.replace(
    /pipelines:[\s\S]*/,
    "pipelines:\n  a: { from: [boiler], via: mem, handlers: [rec] }\n" +
      "  b: { from: [pump], via: mem, handlers: [rec] }\n",
  ));

  const text = await (await app.request("/metrics")).text();
  for (const pipeline of ["a", "b"]) {
    for (const queue of ["hub", "broker", "inflight", "delayed", "dead_letter"]) {
      const line = `telemetry_queue_depth{pipeline="${pipeline}",broker="mem",queue="${queue}"} 0`;
      assert.ok(text.includes(`${line}\n`), line);
    }
  }
  await stopQuietly(runtime);
});

Deno.test("100,000 posted device names keep /metrics bounded: past metrics.max_devices they count as _other, warned once", async () => {
  const { app, runtime, lines } = await adminFixture(`${BASE}\nmetrics: { max_devices: 100 }\n`);
  const before = (await (await app.request("/metrics")).text()).length;
  for (let request = 0; request < 100; request++) {
    const body = Array.from({ length: 1000 }, (_, i) => ({
      device: `sensor-${request * 1000 + i}`,
      metric: "t",
      value: 1,
    }));
    const res = await app.request("/api/v1/samples?pipeline=main", post(body));
    assert.equal(res.status, 202);
  }
  const res = await app.request("/api/v1/samples", post({ device: "pump", metric: "t", value: 1 }));
  assert.equal(res.status, 202);
  const text = await (await app.request("/metrics")).text();
  const ingested = text.split("\n").filter((l) => l.startsWith("telemetry_samples_ingested_total"));
  assert.equal(ingested.length, 2 + 100 + 1, "boiler, pump, 100 admitted, _other");
  assert.ok(text.length - before < 10_000, `/metrics grew by ${text.length - before} bytes`);
  assert.ok(
    text.includes('telemetry_samples_ingested_total{pipeline="main",device="_other"} 99900\n'),
  );
  assert.ok(text.includes('telemetry_samples_ingested_total{pipeline="main",device="pump"} 1\n'));
  const warnings = lines.filter((l) => String(l.msg).includes("metrics.max_devices"));
  assert.equal(warnings.length, 1, "warned once");
  assert.equal(warnings[0]!.level, "warn");
  assert.equal(warnings[0]!.max_devices, 100);
  await stopQuietly(runtime);
});

Deno.test({
  name:
    "NUL, control characters and lone surrogates in device names never reach /metrics raw, and promtool accepts it",
  ignore: await needs("promtool"),
  async fn() {
    const { app, runtime } = await adminFixture(BASE);
    const bad = [
      "nul\u0000x",
      "cr\rlf\nx",
      "esc\u001b[31mx",
      "tab\tdel\u007fc1\u0085x",
      "lone\uD800x",
    ];
    // Whether the edge refuses these or accepts them, none may show up raw.
    const res = await app.request(
      "/api/v1/samples?pipeline=main",
      post(bad.map((device) => ({ device, metric: "t", value: 1 }))),
    );
    assert.ok(res.status === 202 || res.status === 400, `status ${res.status}`);
    // Handlers label by device too (anomaly): the same guard applies.
    const anomalies = runtime.metrics.pluginMetrics("handler", "detector")
      .counter("anomalies_total", "Anomalies found", ["device", "rule"]);
    for (const device of bad) anomalies.inc({ device, rule: "zscore" });
    const body = new Uint8Array(await (await app.request("/metrics")).arrayBuffer());
    for (const byte of body) {
      assert.ok(byte === 0x0a || byte >= 0x20 && byte !== 0x7f, `byte ${byte}`);
    }
    const text = new TextDecoder("utf-8", { fatal: true }).decode(body); // throws on bad UTF-8
    assert.doesNotMatch(text, /[\u0080-\u009f]/, "no C1 control characters");
    assert.match(text, /device="nul\uFFFDx"/);
    const check = await run("promtool", ["check", "metrics"], text);
    assert.equal(check.code, 0, check.output);
    await stopQuietly(runtime);
  },
});

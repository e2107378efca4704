/**
 * Bad and ordinary data: every way into the hub refuses what is not a
 * sample (with its reason) without touching the good samples batched with
 * it, samples without a timestamp stay distinct, and a sample a handler can
 * never take is dead-lettered alone. Checked against a real PostgreSQL:
 * what is accepted is stored once, quarantined visibly, or counted as
 * dropped, and each aggregate window counts exactly the rows stored for it.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Sample, Task } from "../core/mod.ts";
import type { Runtime } from "../core/runtime/runtime.ts";
import { adminFixture, stopQuietly } from "./_fixtures/admin.ts";
import { dropSchema, freshSchema, HAVE_POSTGRES, PG_URL, queryRows } from "./_fixtures/pg_env.ts";
import { waitFor } from "./_fixtures/runtime.ts";
import type { MemoryBroker } from "../plugins/memory/_broker.ts";

const T0 = 1_700_000_000_000;

/** A pipeline into PostgreSQL: optional poison handler, then aggregate and store. */
function yaml(schema: string, opts: { items?: unknown[]; poison?: number } = {}): string {
  const chain = opts.poison === undefined ? "[agg, store]" : "[poison, agg, store]";
  return `
devices:
  line: { type: scripted, config: { items: ${JSON.stringify(opts.items ?? [])} } }
brokers:
  mem: { type: memory }
handlers:
  poison: { type: poison, config: { value: ${opts.poison ?? 0} } }
  agg: { type: aggregate, config: { url: "${PG_URL}", schema: ${schema}, windows: [10s] } }
  store: { type: store, config: { url: "${PG_URL}", schema: ${schema} } }
pipelines:
  main:
    from: [line]
    via: mem
    handlers: ${chain}
    batch: { max_samples: 1000, max_wait: 20ms }
    retry: { max_attempts: 3, delay: 5ms, max: 20ms, jitter: 0 }
`;
}

/** Rows stored per device, and whether each aggregate window counts its rows. */
async function stored(schema: string): Promise<Map<string, number>> {
  const rows = await queryRows(
    schema,
    `SELECT device, count(*)::int AS n FROM "${schema}".telemetry_data GROUP BY device`,
  );
  return new Map(rows.map((r) => [r.device as string, r.n as number]));
}

async function storedTotal(schema: string): Promise<number> {
  let n = 0;
  for (const v of (await stored(schema)).values()) n += v;
  return n;
}

/** Every aggregate window's count equals the rows stored for it. */
async function assertAggregatesMatchRows(schema: string): Promise<void> {
  const mismatched = await queryRows(
    schema,
    `WITH r AS (
       SELECT device, metric, to_timestamp(floor(extract(epoch FROM ts) / 10) * 10) AS w,
              count(*) AS n, sum(value) AS s
       FROM "${schema}".telemetry_data GROUP BY 1, 2, 3)
     SELECT a.device, a.metric, a.count, r.n, a.sum, r.s
     FROM "${schema}".aggregates a
     FULL JOIN r ON r.device = a.device AND r.metric = a.metric AND r.w = a.window_start
     WHERE a.count IS DISTINCT FROM r.n OR abs(a.sum - r.s) > 1e-9
       OR a.sum IS NULL OR r.s IS NULL`,
  );
  assert.deepEqual(mismatched, [], "each aggregate window counts exactly its stored rows");
}

/** accepted = stored + quarantined + counted drops. */
async function assertConserved(runtime: Runtime, schema: string, quarantined = 0) {
  const totals = runtime.metrics.totals("main");
  const broker = runtime.brokers.get("mem") as MemoryBroker;
  let dead = 0;
  for (const letter of (await broker.listDeadLetters({ limit: 1000 })).items) {
    dead += (letter.task.payload as { samples: unknown[] }).samples.length;
  }
  assert.equal(dead, quarantined, "samples in the dead-letter queue");
  assert.equal(totals.samples_quarantined, quarantined);
  assert.equal(
    totals.samples_read,
    (await storedTotal(schema)) + totals.samples_quarantined + totals.samples_dropped,
    "accepted = stored + quarantined + dropped",
  );
}

/** What a test gets: a started pipeline into a fresh schema, with its admin app. */
interface Pipeline {
  app: Awaited<ReturnType<typeof adminFixture>>["app"];
  runtime: Runtime;
  lines: Record<string, unknown>[];
  schema: string;
}

/** A test against a started pipeline (see {@link yaml}), stopped and dropped afterwards. */
function pgTest(
  name: string,
  options: Parameters<typeof yaml>[1],
  fn: (p: Pipeline) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore: !HAVE_POSTGRES,
    async fn() {
      const schema = freshSchema("integ");
      const { app, runtime, lines } = await adminFixture(yaml(schema, options));
      try {
        runtime.start();
        await fn({ app, runtime, lines, schema });
      } finally {
        await stopQuietly(runtime);
        await dropSchema(schema);
      }
    },
  });
}

/** Stops the pipeline, then checks conservation and the aggregates against the rows. */
async function stopAndCheck(runtime: Runtime, schema: string, quarantined = 0) {
  const summary = await runtime.stop();
  await assertConserved(runtime, schema, quarantined);
  await assertAggregatesMatchRows(schema);
  return summary;
}

const post = (body: string, type = "application/json") => ({
  method: "POST",
  body,
  headers: { "content-type": type },
});

/** A good sample of `device`. */
const good = (device: string, i: number): Sample => ({
  device,
  metric: "t",
  value: i,
  ts: T0 + i,
});

/**
 * Malformed samples (each alone in a request): the reason the edge gives.
 * Every one of these was accepted once and took its batch to the
 * dead-letter queue, or never stored.
 */
const BAD_JSON: [string, unknown, string][] = [
  ["ts 1e16", { ts: 1e16 }, '"ts" must be a finite number'],
  ["ts -1e15", { ts: -1e15 }, '"ts" must be a finite number'],
  ["ts -1", { ts: -1 }, '"ts" must be a finite number'],
  ["ts a string", { ts: "2024-01-01" }, '"ts" must be a finite number'],
  ["ts null", { ts: null }, '"ts" must be a finite number'],
  ["seq 1e20", { seq: 1e20 }, '"seq" must be an integer'],
  ["seq 1.5", { seq: 1.5 }, '"seq" must be an integer'],
  ["seq a string", { seq: "7" }, '"seq" must be an integer'],
  ["NUL in device", { device: "a\u0000b" }, '"device" holds a control character'],
  ["NUL in metric", { metric: "t\u0000" }, '"metric" holds a control character'],
  ["NUL in a tag", { tags: { site: "x\u0000" } }, '"tags.site" holds a control character'],
  ["escape in device", { device: "\u001b[31mred" }, '"device" holds a control character'],
  ["lone surrogate in device", { device: "a\ud800" }, '"device" holds a lone surrogate'],
  ["lone surrogate in metric", { metric: "\udfff" }, '"metric" holds a lone surrogate'],
  ["lone surrogate in a tag", { tags: { a: "\ud83d" } }, '"tags.a" holds a lone surrogate'],
  ["3,000-character device", { device: "d".repeat(3000) }, '"device" must be at most 256 bytes'],
  ["300-character metric", { metric: "m".repeat(300) }, '"metric" must be at most 256 bytes'],
  ["100-character unit", { unit: "u".repeat(100) }, '"unit" must be at most 64 bytes'],
  ["unit a number", { unit: 5 }, '"unit" must be a non-empty string'],
  ["quality 5", { quality: 5 }, '"quality" must be "good" or "bad"'],
  ["quality unknown word", { quality: "ok" }, '"quality" must be "good" or "bad"'],
  ["quality deeply nested", { quality: deepArray(100_000) }, '"quality" must be "good" or "bad"'],
  ["tags a string", { tags: "a=b" }, '"tags" must be an object of strings'],
  ["a tag a number", { tags: { a: 1 } }, '"tags.a" must be a non-empty string'],
  ["40 tags", { tags: manyTags(40) }, '"tags" must hold at most 32 tags'],
  ["value a string", { value: "21.5" }, '"value" must be a finite number'],
  ["value null", { value: null }, '"value" must be a finite number'],
  ["value missing", { value: undefined }, '"value" must be a finite number'],
  ["device missing", { device: undefined }, '"device" must be a non-empty string'],
  ["device empty", { device: "" }, '"device" must be a non-empty string'],
  ["metric an object", { metric: {} }, '"metric" must be a non-empty string'],
];

function deepArray(depth: number): unknown {
  // Built as text: JSON.parse takes any depth, JSON.stringify does not.
  return { __raw: "[".repeat(depth) + "]".repeat(depth) };
}

function manyTags(n: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, "v"]));
}

/** The JSON text of a sample of device "bad" with `change` applied. */
function badJson(change: unknown): string {
  const base = JSON.stringify({ device: "bad", metric: "t", value: 1, ts: T0 });
  const fields = Object.entries(change as Record<string, unknown>).map(([k, v]) => {
    const raw = v !== null && typeof v === "object" && "__raw" in v
      ? (v as { __raw: string }).__raw
      : JSON.stringify(v);
    return raw === undefined ? "" : `${JSON.stringify(k)}:${raw}`;
  }).filter((f) => f !== "");
  const removed = Object.entries(change as Record<string, unknown>)
    .filter(([, v]) => v === undefined).map(([k]) => k);
  const obj = JSON.parse(base) as Record<string, unknown>;
  for (const k of [...removed, ...Object.keys(change as object)]) delete obj[k];
  const rest = JSON.stringify(obj).slice(1, -1);
  return `{${[rest, ...fields].filter((p) => p !== "").join(",")}}`;
}

/** Malformed line-protocol lines: the reason given for each. */
const BAD_LINES: [string, string, string][] = [
  ["timestamp 1e30 ns", "m,device=bad v=1 1000000000000000000000000000000", '"ts" must be'],
  ["negative timestamp", "m,device=bad v=1 -5000000000000000000", '"ts" must be'],
  ["NaN-like field", "m,device=bad v=nan", ""],
  ["no fields", "m,device=bad", ""],
  ["NUL in measurement", "m\u0000x v=1", "control character"],
  ["long measurement", `${"m".repeat(300)} v=1`, '"device" must be at most 256 bytes'],
  ["long field name", `m,device=bad ${"f".repeat(300)}=1`, '"metric" must be at most 256 bytes'],
  ["broken escape", "m,device=bad v=1 12x", ""],
];

pgTest(
  "HTTP refuses each malformed sample with its reason and stores the good ones batched beside it",
  {},
  async ({ app, runtime, schema }) => {
    let sent = 0;
    let refusedItems = 0;
    const refusedCases: string[] = [];
    for (const [name, change, reason] of BAD_JSON) {
      // A good request just before and after: they share the gateway's batch window.
      const before = await app.request(
        "/api/v1/samples?pipeline=main",
        post(JSON.stringify(good("ok", sent))),
      );
      sent++;
      const res = await app.request(
        "/api/v1/samples?pipeline=main",
        post(`[${badJson(change)}]`),
      );
      const after = await app.request(
        "/api/v1/samples?pipeline=main",
        post(JSON.stringify(good("ok", sent))),
      );
      sent++;
      assert.equal(before.status, 202);
      assert.equal(after.status, 202);
      assert.equal(res.status, 400, `${name}: ${await res.clone().text()}`);
      const body = await res.json();
      refusedItems += body.invalid.length;
      assert.equal(body.invalid.length, 1, name);
      assert.equal(body.invalid[0].index, 0, name);
      assert.ok(
        String(body.invalid[0].reason).includes(reason),
        `${name}: "${body.invalid[0].reason}" should say ${reason}`,
      );
      refusedCases.push(name);
    }
    // NDJSON: one bad line refuses the request and names the line.
    for (const [name, change, reason] of BAD_JSON.slice(0, 10)) {
      const text = `${JSON.stringify(good("ok", sent))}\n${badJson(change)}\n`;
      const res = await app.request(
        "/api/v1/samples?pipeline=main",
        post(text, "application/x-ndjson"),
      );
      assert.equal(res.status, 400, `ndjson ${name}`);
      const body = await res.json();
      refusedItems += body.invalid.length;
      assert.deepEqual(body.invalid.map((i: { index: number }) => i.index), [1], name);
      assert.ok(String(body.invalid[0].reason).includes(reason), `ndjson ${name}`);
      refusedCases.push(`ndjson ${name}`);
    }
    for (const [name, line, reason] of BAD_LINES) {
      const res = await app.request(
        "/api/v1/samples?pipeline=main",
        post(`ok v=1 ${T0}000000\n${line}`, "text/plain"),
      );
      assert.equal(res.status, 400, `line protocol ${name}: ${await res.clone().text()}`);
      const body = await res.json();
      refusedItems += body.invalid.length;
      assert.equal(body.invalid[0].index, 1, `line protocol ${name}`);
      assert.ok(String(body.invalid[0].reason).includes(reason), `line protocol ${name}`);
      refusedCases.push(`line protocol ${name}`);
    }
    assert.ok(refusedCases.length >= 45, `${refusedCases.length} malformed cases over HTTP`);
    assert.match(
      await runtime.metrics.metrics(),
      new RegExp(
        `telemetry_samples_refused_total\\{pipeline="main",source="http"\\} ${refusedItems}\\n`,
      ),
    );
    await waitFor(async () => (await storedTotal(schema)) === sent, `${sent} good samples`);
    assert.deepEqual([...(await stored(schema))], [["ok", sent]]);
    const summary = await stopAndCheck(runtime, schema);
    assert.equal(summary.tasks_dead_lettered, 0, "no batch was dead-lettered");
  },
);

pgTest(
  "samples without ts or seq stay distinct: three values give three rows and an aggregate of 3",
  {},
  async ({ app, runtime, schema }) => {
    const res = await app.request(
      "/api/v1/samples?pipeline=main",
      post(JSON.stringify([1, 2, 3].map((value) => ({ device: "d", metric: "t", value })))),
    );
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { accepted: 3 });
    // A burst: 1,000 more in 20 requests, JSON, NDJSON and line protocol alike.
    for (let r = 0; r < 20; r++) {
      const batch = Array.from(
        { length: 50 },
        (_, i) => ({ device: "d", metric: "t", value: i }),
      );
      const res = r % 3 === 0
        ? await app.request("/api/v1/samples?pipeline=main", post(JSON.stringify(batch)))
        : r % 3 === 1
        ? await app.request(
          "/api/v1/samples?pipeline=main",
          post(batch.map((s) => JSON.stringify(s)).join("\n"), "application/x-ndjson"),
        )
        : await app.request(
          "/api/v1/samples?pipeline=main",
          post(batch.map((s) => `d t=${s.value}`).join("\n"), "text/plain"),
        );
      assert.equal(res.status, 202);
    }
    await waitFor(async () => (await storedTotal(schema)) === 1003, "1,003 rows");
    const [agg] = await queryRows(
      schema,
      `SELECT sum(count)::int AS n FROM "${schema}".aggregates WHERE device = 'd' AND metric = 't'`,
    );
    assert.equal(agg!.n, 1003);
    await stopAndCheck(runtime, schema);
  },
);

/** What the scripted device emits: four good samples and four it must refuse. */
const DEVICE_ITEMS = [
  good("line", 1),
  { device: "line", metric: "t", value: Number.NaN, ts: T0 },
  { device: "line", metric: "t\u0000", value: 1, ts: T0 },
  good("line", 2),
  { device: "line", metric: "t", value: 1, ts: 1e16 },
  { device: "line", metric: "t", value: 1, quality: 5 },
  { device: "line", metric: "t", value: 3 }, // no ts: stamped, stored
  { device: "line", metric: "t", value: 4 },
];

pgTest(
  "a device's malformed samples are read errors with the reason; its good ones are stored",
  { items: DEVICE_ITEMS },
  async ({ runtime, lines, schema }) => {
    await waitFor(async () => (await storedTotal(schema)) === 4, "4 good samples");
    const [status] = runtime.devices();
    assert.equal(status!.read_errors, 4);
    assert.equal(status!.samples, 4);
    assert.match(status!.last_error!, /^Sample 1 refused: "value" must be a finite number/);
    assert.ok(lines.some((l) => l.msg === "Device samples refused" && l.samples === 4));
    const metrics = await runtime.metrics.metrics();
    assert.match(metrics, /telemetry_device_read_errors_total\{device="line"\} 4/);
    assert.match(metrics, /telemetry_samples_refused_total\{pipeline="main",source="device"\} 4/);
    await stopAndCheck(runtime, schema);
  },
);

pgTest(
  "a foreign task's invalid items are quarantined alone and its valid samples stored, also on replay",
  {},
  async ({ app, runtime, schema }) => {
    const broker = runtime.brokers.get("mem") as MemoryBroker;
    const items: unknown[] = [
      good("foreign", 1),
      { device: "foreign", metric: "t", value: "x" },
      good("foreign", 2),
      { device: "foreign", metric: "t", value: 1, ts: 1e16 },
      { device: "foreign", metric: "t", value: 5 }, // no ts: the task's created_at
      42,
    ];
    const task: Task = {
      id: "foreign-1",
      type: "telemetry.analyze",
      payload: { samples: items },
      attempts: 0,
      created_at: T0 + 500,
    };
    await broker.enqueue([task]);
    await waitFor(async () => (await broker.depth()).dead === 1, "a dead letter");
    assert.equal(await storedTotal(schema), 3);
    const page = await app.request("/api/v1/dlq");
    const [letter] = (await page.json()).items;
    assert.deepEqual(letter.task.payload.samples, [items[1], items[3], 42]);
    assert.match(letter.error.message, /^3 of 6 samples quarantined/);
    assert.deepEqual(letter.error.samples.map((s: { index: number }) => s.index), [0, 1, 2]);
    assert.match(
      letter.error.samples[0].reason,
      /samples\[1\]\): "value" must be a finite number/,
    );
    assert.match(letter.error.samples[2].reason, /samples\[5\]\): Sample must be an object/);
    // Replay: they are checked again and quarantined again; nothing is stored twice.
    const replay = await app.request("/api/v1/dlq/replay", post('{"all": true}'));
    assert.equal(replay.status, 200, await replay.clone().text());
    await waitFor(
      async () =>
        (await broker.depth()).dead === 1 &&
        runtime.metrics.totals("main").samples_quarantined === 6,
      "quarantined again",
    );
    assert.equal(await storedTotal(schema), 3);
    await runtime.stop();
    await assertAggregatesMatchRows(schema);
  },
);

pgTest(
  "a sample a handler can never take is dead-lettered alone; the rest of its batch is stored",
  { poison: 13 },
  async ({ app, runtime, lines, schema }) => {
    const batch = Array.from({ length: 100 }, (_, i) => good(i % 2 ? "a" : "b", i));
    const res = await app.request("/api/v1/samples?pipeline=main", post(JSON.stringify(batch)));
    assert.equal(res.status, 202);
    const broker = runtime.brokers.get("mem") as MemoryBroker;
    await waitFor(async () => (await broker.depth()).dead === 1, "a dead letter");
    await waitFor(async () => (await storedTotal(schema)) === 99, "99 samples");
    const [letter] = (await broker.listDeadLetters({})).items;
    assert.deepEqual((letter!.task.payload as { samples: Sample[] }).samples, [batch[13]]);
    assert.deepEqual(letter!.error.samples, [{ index: 0, reason: "Cannot take value 13" }]);
    assert.ok(
      lines.some((l) => l.msg === "Samples quarantined" && l.samples === 1 && l.of === 100),
    );
    const summary = await stopAndCheck(runtime, schema, 1);
    assert.equal(summary.samples_processed, 99);
  },
);

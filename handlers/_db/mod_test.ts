import assert from "node:assert/strict";
import { PermanentError, RetryableError, z } from "../../core/mod.ts";
import { recordingLogger, testContext } from "../../core/testing.ts";
import { combinePartials } from "./_partials.ts";
import { isOutage } from "./_drivers.ts";
import { MIGRATIONS } from "./_sql.ts";
import { numberArray, textArray } from "./_sql.ts";
import {
  type AnomalyRow,
  classifyError,
  databaseConfig,
  openDatabase,
  openDatabaseCount,
} from "./mod.ts";

const schema = z.strictObject({ ...databaseConfig() });

Deno.test("databaseConfig() defaults to PGlite in ./data/pg and the public schema", () => {
  assert.deepEqual(schema.parse({}), {
    url: "",
    data_dir: "./data/pg",
    schema: "public",
    pool: 4,
    connect_timeout: 10_000,
  });
});

Deno.test("databaseConfig() rejects a schema name that is not a plain identifier", () => {
  const result = schema.safeParse({ schema: 'x"; DROP TABLE y' });
  assert.equal(result.success, false);
  assert.match(result.error!.issues[0]!.message, /lower-case PostgreSQL schema name/);
});

Deno.test("array literals quote text and keep nulls and numbers exact", () => {
  assert.equal(
    textArray(['a"b', "c\\d", null, undefined, "", "{x,y}"]),
    '{"a\\"b","c\\\\d",NULL,NULL,"","{x,y}"}',
  );
  assert.equal(
    numberArray([1, -2.5, null, 0.1 + 0.2, 1e21]),
    "{1,-2.5,NULL,0.30000000000000004,1e+21}",
  );
  assert.equal(numberArray([]), "{}");
});

Deno.test("classifyError() retries connection trouble and fails data errors permanently", () => {
  const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
    code: "ECONNREFUSED",
  });
  const shutdown = Object.assign(new Error("terminating connection due to administrator command"), {
    code: "57P01",
  });
  const badValue = Object.assign(new Error("timestamp out of range"), { code: "22008" });
  const deadlock = Object.assign(new Error("deadlock detected"), { code: "40P01" });
  for (const error of [refused, shutdown, deadlock, new Error("Something odd")]) {
    const mapped = classifyError(error, "Cannot store 3 samples");
    assert.ok(mapped instanceof RetryableError, error.message);
    assert.equal(mapped.cause, error);
    assert.match(mapped.message, /^Cannot store 3 samples: /);
  }
  const permanent = classifyError(badValue, "Cannot store 3 samples");
  assert.ok(permanent instanceof PermanentError);
  assert.equal(
    permanent.message,
    "Cannot store 3 samples: timestamp out of range (SQLSTATE 22008)",
  );
  const already = new PermanentError("Bad");
  assert.equal(classifyError(already, "x"), already);
});

Deno.test("isOutage() is true for lost connections and stopping servers only", () => {
  const coded = (code: string) => Object.assign(new Error(code), { code });
  for (const code of ["ECONNREFUSED", "CONNECTION_CLOSED", "08006", "57P01", "57P03"]) {
    assert.equal(isOutage(coded(code)), true, code);
    assert.equal(isOutage(classifyError(coded(code), "Cannot store")), true, `${code} mapped`);
  }
  for (const code of ["23505", "22008", "40P01", "42P01"]) {
    assert.equal(isOutage(coded(code)), false);
  }
  assert.equal(isOutage(new Error("Something odd")), false);
});

Deno.test("combinePartials() merges equal keys and orders rows by key", () => {
  const p = (device: string, start: number, value: number) => ({
    device,
    metric: "m",
    window_ms: 1000,
    window_start: start,
    count: 1,
    sum: value,
    min: value,
    max: value,
  });
  assert.deepEqual(
    combinePartials([p("b", 0, 1), p("a", 1000, 5), p("a", 0, 2), p("a", 1000, -1)]),
    [
      { ...p("a", 0, 2) },
      {
        device: "a",
        metric: "m",
        window_ms: 1000,
        window_start: 1000,
        count: 2,
        sum: 4,
        min: -1,
        max: 5,
      },
      { ...p("b", 0, 1) },
    ],
  );
});

const ANOMALY: AnomalyRow = {
  id: "a-1",
  device: "d",
  metric: "m",
  ts: 1_700_000_000_000,
  value: 99,
  expected_low: 0,
  expected_high: 50,
  score: 4.2,
  rule: "above",
  severity: "critical",
};

Deno.test({
  name: "openDatabase() on PGlite migrates, shares one instance, stores samples and anomalies " +
    "idempotently",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const baseDir = await Deno.makeTempDir({ prefix: "th_db_" });
    const before = openDatabaseCount();
    const options = schema.parse({ data_dir: "pg", schema: "telemetry" });
    const { logger, lines } = recordingLogger();
    const [db, again] = await Promise.all([
      openDatabase(options, testContext({ baseDir, logger })),
      openDatabase(options, testContext({ baseDir, logger })),
    ]);
    try {
      assert.equal(db.kind, "pglite");
      assert.deepEqual(
        lines.filter((l) => l.msg === "Database ready").map((l) => l.migrations_applied),
        [MIGRATIONS.map((m) => m.version)],
      );
      assert.equal(openDatabaseCount(), before + 1);
      assert.ok(
        (await Deno.stat(`${baseDir}/pg/PG_VERSION`)).isFile,
        "data_dir is relative to dataDir (the test context puts it in baseDir)",
      );
      await again.release();

      const samples = [
        { device: "d", metric: "m", value: 1.5, ts: 1_700_000_000_000.5, seq: 1, unit: "°C" },
        { device: "d", metric: "m", value: 2, ts: 1_700_000_000_001, tags: { a: "x\ty" } },
      ];
      assert.equal(await db.insertSamples(samples), 2);
      assert.equal(await db.insertSamples(samples), 0);
      const { rows } = await db.query(
        "SELECT value, unit, seq::int AS seq, tags FROM telemetry.telemetry_data ORDER BY value",
      );
      assert.deepEqual(rows, [
        { value: 1.5, unit: "°C", seq: 1, tags: null },
        { value: 2, unit: null, seq: null, tags: { a: "x\ty" } },
      ]);

      const anomaly = ANOMALY;
      assert.equal(await db.insertAnomalies([anomaly, { ...anomaly, id: "a-2", detail: "x" }]), 2);
      assert.equal(await db.insertAnomalies([anomaly]), 0);
      assert.equal(await db.resolveAnomaly("a-1", 1_700_000_060_000), true);
      assert.equal(await db.resolveAnomaly("a-1", 1_700_000_070_000), false);
      const resolved = await db.query(
        `SELECT id, (extract(epoch FROM resolved_at) * 1000)::float8 AS at
         FROM telemetry.anomalies ORDER BY id`,
      );
      assert.deepEqual(resolved.rows, [{ id: "a-1", at: 1_700_000_060_000 }, {
        id: "a-2",
        at: null,
      }]);
      await db.health();
    } finally {
      await db.release();
      await Deno.remove(baseDir, { recursive: true });
    }
    assert.equal(openDatabaseCount(), before);
  },
});

Deno.test({
  name: "concurrent writes share statements yet each call gets its own result: duplicates are " +
    "skipped, repeated tasks merged once, anomalies resolved once",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const baseDir = await Deno.makeTempDir({ prefix: "th_db_" });
    const db = await openDatabase(
      schema.parse({ data_dir: "pg", schema: "telemetry" }),
      testContext({ baseDir }),
    );
    try {
      const batch = (from: number) =>
        Array.from({ length: 5 }, (_, i) => ({
          device: "d",
          metric: "m",
          value: from + i,
          ts: 1_700_000_000_000 + from + i,
          seq: from + i,
        }));
      assert.deepEqual(
        await Promise.all([
          db.insertSamples(batch(0)),
          db.insertSamples(batch(10)),
          db.insertSamples(batch(0)),
          db.insertSamples(batch(20)),
        ]),
        [5, 5, 0, 5],
      );
      const partial = (value: number) => ({
        device: "d",
        metric: "m",
        window_ms: 1000,
        window_start: 0,
        count: 1,
        sum: value,
        min: value,
        max: value,
      });
      assert.deepEqual(
        await Promise.all([
          db.mergeAggregates("t0", [partial(1)]),
          db.mergeAggregates("t1", [partial(2)]),
          db.mergeAggregates("t2", [partial(4)]),
          db.mergeAggregates("t1", [partial(2)]),
        ]),
        [true, true, true, false],
      );
      const { rows } = await db.query(
        "SELECT count::int AS count, sum, min, max FROM telemetry.aggregates",
      );
      assert.deepEqual(rows, [{ count: 3, sum: 7, min: 1, max: 4 }]);
      const anomaly = ANOMALY;
      await db.insertAnomalies([anomaly, { ...anomaly, id: "a-2" }]);
      assert.deepEqual(
        await Promise.all([
          db.resolveAnomaly("a-1", 1_700_000_060_000),
          db.resolveAnomaly("a-2", 1_700_000_060_000),
          db.resolveAnomaly("a-1", 1_700_000_070_000),
          db.resolveAnomaly("a-3", 1_700_000_070_000),
        ]),
        [true, true, false, false],
      );
    } finally {
      await db.release();
      await Deno.remove(baseDir, { recursive: true });
    }
  },
});

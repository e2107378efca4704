import assert from "node:assert/strict";
import { PermanentError, RetryableError, type Sample } from "../core/mod.ts";
import postgres from "postgres";
import { FakeClock, recordingLogger, recordingMetrics, testContext } from "../core/testing.ts";
import store from "../handlers/store/mod.ts";
import { openDatabase, openDatabaseCount } from "../handlers/_db/mod.ts";
import { MIGRATIONS } from "../handlers/_db/_sql.ts";
import {
  dropSchema,
  freshSchema,
  HAVE_POSTGRES,
  PG_URL,
  queryRows,
  SAMPLE_ROWS_SQL,
  withSchema,
  withSchemaNamed,
} from "./_fixtures/pg_env.ts";
import { freePort } from "./_fixtures/tools.ts";
import { taskContext } from "./_fixtures/pg_aggregates.ts";
import { waitFor } from "./_fixtures/runtime.ts";

const ignore = !HAVE_POSTGRES;

function batch(n: number, device = "boiler"): Sample[] {
  return Array.from({ length: n }, (_, i) => ({
    device,
    metric: i % 2 === 0 ? "temperature" : "pressure",
    value: i * 1.25 - 3,
    ts: 1_700_000_000_000 + i + 0.5,
    seq: i,
  }));
}

Deno.test({
  name: "store writes rows that match the input samples on PostgreSQL",
  ignore,
  async fn() {
    const schema = freshSchema("store");
    const handler = await store.create(
      store.config.parse({ url: PG_URL, schema }),
      testContext({ name: "store" }),
    );
    try {
      const samples: Sample[] = [
        { device: 'b"oil,er', metric: "t{1}", value: 21.5, ts: 1_700_000_000_123.25, seq: 7 },
        {
          device: "boiler",
          metric: "rh",
          value: -0.1,
          ts: 1_700_000_000_000,
          unit: "%",
          quality: "bad",
          tags: { site: 'north \\ "A"', floor: "2" },
        },
      ];
      await handler.handle(samples, taskContext("t1"));
      const rows = await queryRows(schema, SAMPLE_ROWS_SQL(schema));
      assert.deepEqual(rows, [
        {
          device: 'b"oil,er',
          metric: "t{1}",
          seq: 7,
          value: 21.5,
          unit: null,
          quality: null,
          tags: null,
          ts: 1_700_000_000_123.25,
        },
        {
          device: "boiler",
          metric: "rh",
          seq: null,
          value: -0.1,
          unit: "%",
          quality: "bad",
          tags: { site: 'north \\ "A"', floor: "2" },
          ts: 1_700_000_000_000,
        },
      ]);
    } finally {
      await handler.close?.();
      await dropSchema(schema);
    }
  },
});

Deno.test({
  name: "store keeps each sample once when a task is delivered twice",
  ignore,
  fn: () =>
    withSchema("store", async (db, schema) => {
      const samples = batch(1000);
      // Samples without seq are keyed by timestamp.
      const noSeq = batch(10, "pump").map(({ seq: _, ...s }) => s);
      assert.equal(await db.insertSamples([...samples, ...noSeq]), 1010);
      assert.equal(await db.insertSamples([...samples, ...noSeq]), 0);
      assert.equal(await db.insertSamples([...samples.slice(500), ...batch(1005).slice(1000)]), 5);
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM "${schema}".telemetry_data`);
      assert.equal(rows[0]!.n, 1015);
    }),
});

Deno.test({
  name: "store keeps samples whose seq starts again (a device or process restart) as new samples",
  ignore,
  fn: () =>
    withSchema("reseq", async (db, schema) => {
      const first = batch(10);
      // The same device restarted an hour later: seq counts from 0 again.
      const restarted = batch(10).map((s) => ({ ...s, ts: s.ts + 3_600_000, value: s.value + 1 }));
      assert.equal(await db.insertSamples(first), 10);
      assert.equal(await db.insertSamples(restarted), 10, "not taken for duplicates");
      assert.equal(await db.insertSamples([...first, ...restarted]), 0, "redelivery still skipped");
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM "${schema}".telemetry_data`);
      assert.equal(rows[0]!.n, 20);
    }),
});

Deno.test({
  name: "a schema made by version 1 is upgraded in place, keeping its samples",
  ignore,
  async fn() {
    const schema = freshSchema("upgrade");
    const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
    try {
      // What a database written by the first release holds.
      await sql.unsafe(`CREATE SCHEMA "${schema}"`);
      await sql.unsafe(MIGRATIONS[0]!.sql(`"${schema}"`));
      await sql.unsafe(`CREATE TABLE "${schema}".schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO "${schema}".schema_migrations (version, name) VALUES (1, 'first');
        INSERT INTO "${schema}".telemetry_series (device, metric) VALUES ('boiler', 't');
        INSERT INTO "${schema}".telemetry_samples (series_id, ts, value, seq)
          SELECT 1, to_timestamp(1700000000 + i), i, i FROM generate_series(0, 9) i;
        INSERT INTO "${schema}".telemetry_samples (series_id, ts, value)
          SELECT 1, to_timestamp(1700000100 + i), i FROM generate_series(0, 4) i;`);
    } finally {
      await sql.end({ timeout: 1 });
    }
    await withSchemaNamed(schema, async (db) => {
      const { rows } = await db.query(
        `SELECT count(*)::int AS n FROM "${schema}".telemetry_data`,
      );
      assert.equal(rows[0]!.n, 15, "the stored samples are kept");
      // The restarted device's seq 0..9 an hour later is new; the old rows are still known.
      const again = Array.from({ length: 10 }, (_, i) => ({
        device: "boiler",
        metric: "t",
        value: i,
        ts: (1_700_000_000 + i) * 1000,
        seq: i,
      }));
      assert.equal(await db.insertSamples(again), 0, "version 1's rows are still duplicates");
      assert.equal(
        await db.insertSamples(again.map((s) => ({ ...s, ts: s.ts + 3_600_000 }))),
        10,
      );
      const applied = await db.query(
        `SELECT version FROM "${schema}".schema_migrations ORDER BY version`,
      );
      assert.deepEqual(applied.rows, MIGRATIONS.map((m) => ({ version: m.version })));
    });
  },
});

Deno.test({
  name: "openDatabase shares one database per url and schema and closes it on the last release",
  ignore,
  async fn() {
    const schema = freshSchema("share");
    const options = store.config.parse({ url: PG_URL, schema });
    const before = openDatabaseCount();
    const [a, b] = await Promise.all([
      openDatabase(options, testContext()),
      openDatabase(options, testContext()),
    ]);
    try {
      assert.equal(openDatabaseCount(), before + 1);
      await a.release();
      await a.release();
      assert.equal(openDatabaseCount(), before + 1, "b still holds it");
      await b.health();
    } finally {
      await b.release();
      await dropSchema(schema);
    }
    assert.equal(openDatabaseCount(), before);
  },
});

Deno.test({
  name: "migrations run once when two processes start on a fresh schema together",
  ignore,
  async fn() {
    const schema = freshSchema("mig");
    const script = new URL("./_fixtures/pg_migrate.ts", import.meta.url).pathname;
    const config = new URL("../deno.json", import.meta.url).pathname;
    try {
      const runs = await Promise.all([1, 2, 3].map(() =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--config", config, script, PG_URL, schema],
          stdout: "piped",
          stderr: "piped",
        }).output()
      ));
      const outputs = runs.map((r) => new TextDecoder().decode(r.stdout).trim());
      for (const [i, r] of runs.entries()) {
        assert.ok(r.success, `process ${i}: ${new TextDecoder().decode(r.stderr)}`);
      }
      // Exactly one process applied every version; the others found them applied.
      const versions = MIGRATIONS.map((m) => m.version);
      assert.deepEqual(outputs.sort(), [JSON.stringify(versions), "[]", "[]"].sort());
      const rows = await queryRows(
        schema,
        `SELECT version FROM "${schema}".schema_migrations ORDER BY version`,
      );
      assert.deepEqual(rows, versions.map((version) => ({ version })));
    } finally {
      await dropSchema(schema);
    }
  },
});

Deno.test({
  name: "store reports an unreachable PostgreSQL as retryable",
  async fn() {
    const url = `postgres://postgres@127.0.0.1:${freePort()}/test`;
    await assert.rejects(
      async () =>
        await store.create(
          store.config.parse({ url, schema: "x", connect_timeout: "2s" }),
          testContext(),
        ),
      (error: unknown) => {
        assert.ok(error instanceof RetryableError, String(error));
        assert.match(error.message, /ECONNREFUSED/);
        assert.ok(error.cause);
        return true;
      },
    );
  },
});

Deno.test({
  name: "store reports a value PostgreSQL rejects as permanent",
  ignore,
  fn: () =>
    withSchema("perm", async (db) => {
      await assert.rejects(
        db.insertSamples([{ device: "d", metric: "m", value: 1, ts: 1e20, seq: 1 }]),
        (error: unknown) => error instanceof PermanentError && /SQLSTATE 22/.test(error.message),
      );
    }),
});

Deno.test({
  name: "expireSamples deletes old samples in chunks, and only one process deletes at a time",
  ignore,
  fn: () =>
    withSchema("expire", async (db, schema) => {
      const old = batch(25, "old").map((s, i) => ({ ...s, ts: 1_000_000 + i }));
      const fresh = batch(10, "fresh");
      await db.insertSamples([...old, ...fresh]);
      const count = async () =>
        (await db.query(`SELECT count(*)::int AS n FROM "${schema}".telemetry_samples`)).rows[0]!
          .n;

      // Another process holds the schema's retention lock: this one leaves it alone.
      const other = postgres(PG_URL, { max: 1, onnotice: () => {} });
      try {
        await other.begin(async (tx) => {
          await tx`SELECT pg_advisory_xact_lock(hashtext(${`telemetryhub:retention:${schema}`}))`;
          assert.equal(await db.expireSamples(2_000_000, { chunk: 7 }), null);
        });
      } finally {
        await other.end({ timeout: 1 });
      }
      assert.equal(await count(), 35);

      assert.equal(await db.expireSamples(2_000_000, { chunk: 7 }), 25, "four chunks of 7");
      assert.equal(await count(), 10);
      const { rows } = await db.query(
        `SELECT DISTINCT device FROM "${schema}".telemetry_data`,
      );
      assert.deepEqual(rows, [{ device: "fresh" }]);
      assert.equal(await db.expireSamples(2_000_000), 0);
    }),
});

Deno.test({
  name: "store with retention deletes samples older than it on the injected clock",
  ignore,
  async fn() {
    const schema = freshSchema("retain");
    const clock = new FakeClock(1_700_000_000_000);
    const log = recordingLogger();
    const recorded = recordingMetrics("handler", "store");
    const handler = await store.create(
      store.config.parse({ url: PG_URL, schema, retention: "1h" }),
      testContext({ clock, logger: log.logger, metrics: recorded.metrics }),
    );
    const count = async () =>
      (await queryRows(schema, `SELECT count(*)::int AS n FROM "${schema}".telemetry_samples`))[0]!
        .n;
    try {
      const hour = 3_600_000;
      const samples = [2 * hour, 61 * 60_000, 52 * 60_000, 0].map((age, i) => ({
        device: "boiler",
        metric: "t",
        value: i,
        ts: clock.now() - age,
      }));
      await handler.handle(samples, taskContext("t1"));
      assert.equal(await count(), 4);
      // Each pass sleeps on the fake clock once its deletes are done.
      const sleeping = () => waitFor(() => clock.pending > 0, "the retention loop to sleep");
      // Passes run at start-up and every tenth of the retention, at most every 5 minutes.
      await sleeping();
      await clock.advance(4 * 60_000);
      assert.equal(await count(), 4, "no pass before it is due");
      await clock.advance(60_000);
      await waitFor(async () => (await count()) === 2, "the two expired samples deleted");
      // Five minutes later the sample that was 52 minutes old has expired too.
      await sleeping();
      await clock.advance(5 * 60_000);
      await waitFor(async () => (await count()) === 1, "the third sample deleted");
      assert.ok(log.lines.some((r) => r.msg === "Expired samples deleted"));
      assert.equal(await recorded.value("store_samples_expired_total"), 3);
    } finally {
      await handler.close?.();
      await dropSchema(schema);
    }
  },
});

Deno.test("store refuses a retention under a minute with a clear message", () => {
  const result = store.config.safeParse({ retention: "30s" });
  assert.equal(result.success, false);
  assert.match(String(result.error?.issues[0]?.message), /at least "1m"/);
  assert.equal(store.config.parse({}).retention, 0);
  assert.equal(store.config.parse({ retention: "30d" }).retention, 30 * 86_400_000);
});

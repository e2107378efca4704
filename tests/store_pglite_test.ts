import assert from "node:assert/strict";
import { testContext } from "../core/testing.ts";
import { openDatabase } from "../handlers/_db/mod.ts";
import store from "../handlers/store/mod.ts";
import {
  aggregatesSql,
  assertSameAggregates,
  bruteForce,
  rowsToMap,
} from "./_fixtures/pg_aggregates.ts";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";

const COUNT = 500;

Deno.test({
  name: "a pipeline stores and aggregates every sample once in PGlite although each task " +
    "is retried twice",
  // PGlite's WASM runtime keeps a few ops alive after close.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "th_pglite_" });
    try {
      const { runtime } = await createRuntime(`
admin: { enabled: false }
devices:
  dev:
    type: fixed
    config: { count: ${COUNT}, batch: 25 }
brokers:
  mem: { type: memory }
handlers:
  agg:
    type: aggregate
    config: { data_dir: "${dir}", windows: [1s, 1m] }
  db:
    type: store
    config: { data_dir: "${dir}" }
  flaky:
    type: flaky
    config: { fail_times: 2 }
pipelines:
  main:
    from: [dev]
    via: mem
    handlers: [agg, db, flaky]
    batch: { max_samples: 50, max_wait: 5ms }
    workers: 2
    retry: { max_attempts: 5, delay: 5ms, max: 20ms, jitter: 0 }
`);
      runtime.start();
      // Both handlers share one PGlite: this handle keeps it open after the runtime stops.
      const db = await openDatabase(store.config.parse({ data_dir: dir }), testContext());
      try {
        const count = async () =>
          Number((await db.query("SELECT count(*) AS n FROM telemetry_data")).rows[0]!.n);
        await waitFor(async () => (await count()) >= COUNT, `${COUNT} samples`, 30_000);
        const summary = await runtime.stop();
        assert.equal(summary.tasks_dead_lettered, 0);
        assert.ok(summary.tasks_retried >= 2);
        const { rows } = await db.query(
          "SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d FROM telemetry_data",
        );
        assert.deepEqual(rows, [{ n: COUNT, d: COUNT }]);
        const samples = (await db.query(
          `SELECT device, metric, value, (extract(epoch FROM ts) * 1000)::float8 AS ts
           FROM telemetry_data`,
        )).rows.map((r) => ({
          device: r.device as string,
          metric: r.metric as string,
          value: r.value as number,
          ts: r.ts as number,
        }));
        assertSameAggregates(
          rowsToMap((await db.query(aggregatesSql("public"))).rows),
          bruteForce(samples, [1000, 60_000]),
        );
      } finally {
        await runtime.stop();
        await db.release();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a second process is refused a PGlite data directory in use, and gets it once it is free",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "th_lock_" });
    const data = `${dir}/pg`;
    const script = new URL("./_fixtures/pglite_open.ts", import.meta.url).pathname;
    const config = new URL("../deno.json", import.meta.url).pathname;
    const openElsewhere = async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", config, script, data],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout).trim();
    };
    const options = { url: "", data_dir: data, schema: "public", pool: 1, connect_timeout: 5000 };
    const db = await openDatabase(options, testContext());
    try {
      const refused = await openElsewhere();
      assert.match(refused, /The PGlite data directory ".*\/pg" is in use by another process/);
      assert.match(refused, new RegExp(`\\(pid ${Deno.pid}\\)`));
      // The holder goes on undisturbed.
      const sample = { device: "d", metric: "m", value: 1, ts: 1_700_000_000_000 };
      assert.equal(await db.insertSamples([sample]), 1);
    } finally {
      await db.release();
    }
    assert.equal(await openElsewhere(), "opened");
    await Deno.remove(dir, { recursive: true });
  },
});

import assert from "node:assert/strict";
import postgres from "postgres";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";
import { startPgServer } from "./_fixtures/pg_server.ts";

const COUNT = 3000;

Deno.test({
  name: "store and aggregate lose and double nothing when PostgreSQL stops mid-run and comes back",
  // postgres.js keeps reconnect timers briefly after its pools end.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await startPgServer();
    const sql = postgres(server.url, { max: 1, onnotice: () => {}, connect_timeout: 2 });
    const stored = async (): Promise<number> => {
      try {
        const [row] = await sql`SELECT count(*)::int AS n FROM public.telemetry_data`;
        return row!.n as number;
      } catch {
        return -1;
      }
    };
    try {
      const { runtime } = await createRuntime(`
admin: { enabled: false }
devices:
  dev:
    type: fixed
    config: { count: ${COUNT}, batch: 20, every: 2ms }
brokers:
  mem: { type: memory }
handlers:
  db:
    type: store
    config: { url: "${server.url}", pool: 2, connect_timeout: 2s }
  agg:
    type: aggregate
    config: { url: "${server.url}", pool: 2, connect_timeout: 2s, windows: [1h] }
pipelines:
  main:
    from: [dev]
    via: mem
    handlers: [db, agg]
    batch: { max_samples: 50, max_wait: 5ms }
    workers: 2
    retry: { max_attempts: 100, delay: 20ms, max: 200ms, jitter: 0 }
`);
      runtime.start();
      await waitFor(async () => (await stored()) >= 300, "300 samples before the stop");
      await server.stop();
      // Tasks keep arriving and fail while the server is down.
      await new Promise((r) => setTimeout(r, 700));
      await server.start();
      await waitFor(async () => (await stored()) >= COUNT, `${COUNT} samples`, 30_000);
      const summary = await runtime.stop();
      const [row] = await sql`SELECT count(*)::int AS n, count(DISTINCT seq)::int AS distinct_seq,
        min(seq)::int AS lo, max(seq)::int AS hi FROM public.telemetry_data`;
      assert.deepEqual(row, { n: COUNT, distinct_seq: COUNT, lo: 0, hi: COUNT - 1 });
      // Every sample counted once in the hourly aggregates (values are 0 … COUNT - 1).
      const [agg] = await sql`SELECT sum(count)::int AS n, sum(sum)::float8 AS total,
        min(min)::float8 AS lo, max(max)::float8 AS hi FROM public.aggregates`;
      assert.deepEqual(agg, { n: COUNT, total: (COUNT * (COUNT - 1)) / 2, lo: 0, hi: COUNT - 1 });
      assert.ok(summary.tasks_retried > 0, "some tasks failed while the server was down");
      assert.equal(summary.tasks_dead_lettered, 0);
    } finally {
      await sql.end({ timeout: 1 });
      await server.destroy();
    }
  },
});

import assert from "node:assert/strict";
import postgres from "postgres";
import { RetryableError } from "../core/mod.ts";
import { recordingLogger, testContext } from "../core/testing.ts";
import { openDatabase } from "../handlers/_db/mod.ts";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";
import { type PgServer, startPgServer } from "./_fixtures/pg_server.ts";

const RESTARTS = 20;
const UNREACHABLE = "Database unreachable; tasks that need it are retried until it is back";
const REACHABLE = "Database reachable again";

/** A client for the test's own reads: reconnects at once (not after postgres.js's backoff). */
function client(server: PgServer) {
  return postgres(server.url, { max: 1, onnotice: () => {}, connect_timeout: 2, backoff: () => 0 });
}

/**
 * Records errors nothing caught (a driver's timer throwing, a promise
 * rejected with no handler): without this they would end the test
 * process, and the test would not say what happened.
 */
function recordUncaught(): { errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    errors.push(e.error);
    e.preventDefault();
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    errors.push(e.reason);
    e.preventDefault();
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return {
    errors,
    stop() {
      globalThis.removeEventListener("error", onError);
      globalThis.removeEventListener("unhandledrejection", onRejection);
    },
  };
}

Deno.test({
  name: `store and aggregate survive ${RESTARTS} PostgreSQL stops under load: nothing lost, ` +
    "nothing stored twice, each outage logged once",
  // postgres.js keeps reconnect timers briefly after its pools end.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const uncaught = recordUncaught();
    const server = await startPgServer();
    const sql = client(server);
    const stored = async (): Promise<number> => {
      const [row] = await sql`SELECT count(*)::int AS n FROM public.telemetry_data`;
      return row!.n as number;
    };
    try {
      const { runtime, lines } = await createRuntime(`
admin: { enabled: false }
devices:
  dev:
    type: fixed
    config: { count: 100000000, batch: 10, every: 5ms }
brokers:
  mem: { type: memory }
handlers:
  db:
    type: store
    config: { url: "${server.url}", pool: 2, connect_timeout: 2s }
  agg:
    type: aggregate
    config: { url: "${server.url}", pool: 2, connect_timeout: 2s, windows: [1s] }
pipelines:
  main:
    from: [dev]
    via: mem
    handlers: [db, agg]
    batch: { max_samples: 50, max_wait: 5ms }
    workers: 2
    # Few attempts: an outage spends none of them (tasks are held, not retried).
    retry: { max_attempts: 2, delay: 20ms, max: 200ms, jitter: 0 }
`);
      const logged = (msg: string, level: string) =>
        lines.filter((l) => l.msg === msg && l.level === level);
      runtime.start();
      for (let i = 0; i < RESTARTS; i++) {
        const before = await stored();
        await waitFor(async () => (await stored()) >= before + 200, `progress before stop ${i}`);
        await server.stop(i % 2 === 0 ? "fast" : "immediate");
        // Tasks keep arriving and fail while the server is down.
        await waitFor(() => logged(UNREACHABLE, "warn").length > i, `outage ${i} logged`);
        await server.start();
        await waitFor(() => logged(REACHABLE, "info").length > i, `recovery ${i} logged`, 20_000);
      }
      const summary = await runtime.stop();

      assert.deepEqual(uncaught.errors, []);
      assert.equal(summary.tasks_dead_lettered, 0);
      assert.equal(summary.tasks_abandoned, 0);
      assert.equal(summary.samples_dropped, 0);
      assert.ok(summary.tasks_released > 0, "tasks were held while the server was down");
      const accepted = summary.samples_read;
      const [row] = await sql`SELECT count(*)::int AS n, count(DISTINCT seq)::int AS distinct_seq,
        min(seq)::int AS lo, max(seq)::int AS hi FROM public.telemetry_data`;
      assert.deepEqual(row, { n: accepted, distinct_seq: accepted, lo: 0, hi: accepted - 1 });
      // Every window's count is the number of rows stored in it.
      const windows = await sql`
        SELECT a.window_start, a.count::int AS counted, count(d.seq)::int AS rows
        FROM public.aggregates a LEFT JOIN public.telemetry_data d
          ON d.device = a.device AND d.metric = a.metric AND d.ts >= a.window_start
          AND d.ts < a.window_start + a.window_ms * interval '1 millisecond'
        GROUP BY a.device, a.metric, a.window_ms, a.window_start, a.count
        ORDER BY a.window_start`;
      assert.ok(windows.length > 1, "several windows");
      assert.deepEqual(
        windows.filter((w) => w.counted !== w.rows),
        [],
        "windows whose count differs from their rows",
      );
      assert.equal(windows.reduce((n, w) => n + (w.counted as number), 0), accepted);
      // One warning and one recovery per outage, for the pool the two handlers share: they
      // alternate. A loaded machine may see an extra outage (a connect timeout while the
      // server is up), which must be logged the same way.
      const warnings = logged(UNREACHABLE, "warn");
      const transitions = lines
        .filter((l) => l.msg === UNREACHABLE || l.msg === REACHABLE)
        .map((l) => l.msg === UNREACHABLE ? "down" : "up");
      assert.ok(warnings.length >= RESTARTS, `${warnings.length} outages logged`);
      assert.deepEqual(
        transitions,
        Array.from({ length: warnings.length * 2 }, (_, i) => i % 2 === 0 ? "down" : "up"),
      );
      assert.equal(typeof warnings[0]!.error, "string");
      assert.equal(warnings[0]!.database, server.url);
    } finally {
      uncaught.stop();
      await sql.end({ timeout: 1 });
      await server.destroy();
    }
  },
});

Deno.test({
  name: "a merge in flight when PostgreSQL stops fails as retryable without crashing, " +
    "and merges once when tried again",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const uncaught = recordUncaught();
    const server = await startPgServer();
    const sql = client(server);
    const { logger } = recordingLogger();
    const db = await openDatabase(
      { url: server.url, data_dir: "", schema: "public", pool: 2, connect_timeout: 2000 },
      testContext({ logger }),
    );
    try {
      const partial = {
        device: "d",
        metric: "t",
        window_ms: 60_000,
        window_start: 0,
        count: 2,
        sum: 3,
        min: 1,
        max: 2,
      };
      // Make the merge sleep inside its statement (a lock wait ends differently).
      await sql.unsafe(`CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$;
        CREATE TRIGGER slow BEFORE INSERT ON public.aggregates
        FOR EACH ROW EXECUTE FUNCTION public.slow()`);
      const merge = db.mergeAggregates("task-1", [partial]).then(() => null, (e: unknown) => e);
      await waitFor(async () => {
        const [r] = await sql`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE wait_event = 'PgSleep' AND application_name = 'telemetryhub'`;
        return r!.n === 1;
      }, "the merge to sleep in its statement");
      await server.stop("fast");
      const error = await merge;
      assert.ok(error instanceof RetryableError, String(error));
      await server.start();
      await waitFor(
        () => db.health().then(() => true, () => false),
        "the database to answer again",
      );
      await sql`DROP TRIGGER slow ON public.aggregates`;
      assert.equal(await db.mergeAggregates("task-1", [partial]), true);
      assert.equal(await db.mergeAggregates("task-1", [partial]), false);
      const rows = await sql`SELECT count::int, sum::float8 FROM public.aggregates`;
      assert.deepEqual([...rows], [{ count: 2, sum: 3 }]);
      assert.deepEqual(uncaught.errors, []);
    } finally {
      uncaught.stop();
      await db.release();
      await sql.end({ timeout: 1 });
      await server.destroy();
    }
  },
});

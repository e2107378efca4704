import assert from "node:assert/strict";
import type { HandlerInstance } from "../core/mod.ts";
import { FakeClock, type RecordedMetrics, recordingMetrics, testContext } from "../core/testing.ts";
import aggregate from "../handlers/aggregate/mod.ts";
import {
  aggregatesSql,
  assertSameAggregates,
  bruteForce,
  chunks,
  rowsToMap,
  syntheticSamples,
  taskContext,
} from "./_fixtures/pg_aggregates.ts";
import { dropSchema, freshSchema, HAVE_POSTGRES, PG_URL, queryRows } from "./_fixtures/pg_env.ts";
import { waitFor } from "./_fixtures/runtime.ts";

const ignore = !HAVE_POSTGRES;
const WINDOWS = ["10s", "1m", "1h"];
const WINDOW_MS = [10_000, 60_000, 3_600_000];

/** An aggregate handler on its own connection pool (the URL differs by application name). */
async function instance(
  schema: string,
  app: string,
  clock = new FakeClock(),
  recorded: RecordedMetrics = recordingMetrics("handler", "agg"),
) {
  return await aggregate.create(
    aggregate.config.parse({ url: `${PG_URL}?application_name=${app}`, schema, windows: WINDOWS }),
    testContext({ name: "agg", clock, metrics: recorded.metrics }),
  );
}

async function stored(schema: string) {
  return rowsToMap(await queryRows(schema, aggregatesSql(schema)));
}

Deno.test({
  name: "aggregate equals a brute-force computation over the same samples",
  ignore,
  async fn() {
    const schema = freshSchema("agg");
    const handler = await instance(schema, "a");
    try {
      const samples = syntheticSamples(3000, 150_000);
      for (const [i, task] of chunks(samples, 250).entries()) {
        await handler.handle(task, taskContext(`task-${i}`));
      }
      assertSameAggregates(await stored(schema), bruteForce(samples, WINDOW_MS));
    } finally {
      await handler.close?.();
      await dropSchema(schema);
    }
  },
});

Deno.test({
  name: "aggregate stays exact when one window's samples are split across two instances " +
    "and tasks are delivered twice",
  ignore,
  async fn() {
    const schema = freshSchema("agg");
    const handlers: HandlerInstance[] = [];
    try {
      // Two workers of one process: one metric registry, as the runtime gives them.
      const recorded = recordingMetrics("handler", "agg");
      handlers.push(
        await instance(schema, "worker_a", undefined, recorded),
        await instance(schema, "worker_b", undefined, recorded),
      );
      const [a, b] = handlers as [HandlerInstance, HandlerInstance];
      // 20 s of samples: every 1m and 1h window is fed by both instances.
      const samples = syntheticSamples(4000, 20_000, 7);
      const tasks = chunks(samples, 100);
      await Promise.all(
        tasks.map((task, i) => (i % 2 === 0 ? a : b).handle(task, taskContext(`task-${i}`))),
      );
      // Redelivery: every third task again, on the other instance, concurrently.
      await Promise.all(
        tasks.map((task, i) =>
          i % 3 === 0 ? (i % 2 === 0 ? b : a).handle(task, taskContext(`task-${i}`)) : undefined
        ),
      );
      assertSameAggregates(await stored(schema), bruteForce(samples, WINDOW_MS));
      assert.equal(await recorded.value("aggregate_tasks_total", { result: "merged" }), 40);
      assert.equal(await recorded.value("aggregate_tasks_total", { result: "duplicate" }), 14);
    } finally {
      for (const h of handlers) await h.close?.();
      await dropSchema(schema);
    }
  },
});

Deno.test({
  name: "aggregate forgets handled tasks after the ledger retention",
  ignore,
  async fn() {
    const schema = freshSchema("agg");
    const clock = new FakeClock();
    const handler = await aggregate.create(
      aggregate.config.parse({ url: PG_URL, schema, ledger_retention: "1m" }),
      testContext({ name: "agg", clock }),
    );
    try {
      const [first = [], second = []] = chunks(syntheticSamples(20, 1000), 10);
      await handler.handle(first, taskContext("old", clock));
      await clock.advance(120_000);
      await handler.handle(second, taskContext("new", clock));
      const rows = await queryRows(schema, `SELECT task_id FROM "${schema}".aggregate_tasks`);
      assert.deepEqual(rows, [{ task_id: "agg:new" }]);
    } finally {
      await handler.close?.();
      await dropSchema(schema);
    }
  },
});

Deno.test({
  name: "aggregate deletes each window's rows past its own retention, on the injected clock",
  ignore,
  async fn() {
    const schema = freshSchema("aggret");
    const clock = new FakeClock(1_700_000_000_000);
    const recorded = recordingMetrics("handler", "agg");
    const handler = await aggregate.create(
      aggregate.config.parse({
        url: PG_URL,
        schema,
        windows: ["10s", "1m"],
        retention: { "10s": "1h" },
      }),
      testContext({ name: "agg", clock, metrics: recorded.metrics }),
    );
    const count = async (windowMs: number) =>
      (await queryRows(
        schema,
        `SELECT count(*)::int AS n FROM "${schema}".aggregates WHERE window_ms = ${windowMs}`,
      ))[0]!.n;
    try {
      const now = clock.now();
      const sample = (ts: number) => ({ device: "boiler", metric: "t", value: 1, ts });
      await handler.handle([sample(now - 7_200_000), sample(now)], taskContext("t1", clock));
      assert.equal(await count(10_000), 2);
      assert.equal(await count(60_000), 2);
      // The next pass is due after a tenth of the shortest retention (at most 5 minutes).
      await waitFor(() => clock.pending > 0, "the retention loop to sleep");
      await clock.advance(300_000);
      await waitFor(async () => (await count(10_000)) === 1, "the old 10s window deleted");
      assert.equal(await count(60_000), 2, "windows without a retention are kept");
      assert.equal(await recorded.value("aggregates_expired_total", { window: "10s" }), 1);
    } finally {
      await handler.close?.();
      await dropSchema(schema);
    }
  },
});

Deno.test("aggregate refuses a retention for a window it does not compute", () => {
  const result = aggregate.config.safeParse({ windows: ["10s", "1m"], retention: { "5m": "1d" } });
  assert.equal(result.success, false);
  assert.deepEqual(result.error?.issues.map((i) => [i.path, i.message]), [
    [["retention", "5m"], '"5m" is not one of the windows "10s", "1m"'],
  ]);
  assert.equal(aggregate.config.safeParse({ retention: { "1m": "30s" } }).success, false);
  assert.deepEqual(
    aggregate.config.parse({ windows: ["10s"], retention: { "10s": "1d" } }).retention,
    { "10s": 86_400_000 },
  );
});

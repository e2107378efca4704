/**
 * A broker with the core contract alone (the example log broker) behind a
 * whole pipeline: the runtime waits out retry delays itself, and the admin
 * API says what the broker cannot do instead of failing.
 */
import assert from "node:assert/strict";
import { flakyHandler, recording, recordings } from "./_fixtures/plugins.ts";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";
import { adminFixture, stopQuietly } from "./_fixtures/admin.ts";

const LOG_BROKER = new URL("../examples/brokers/log.ts", import.meta.url).href;

function yaml(key: string, count: number, handlers: string): string {
  return `
plugins: [${LOG_BROKER}]
devices:
  dev:
    type: fixed
    config: { count: ${count}, batch: 10, every: 0ms }
brokers:
  log: { type: log }
handlers:
  rec: { type: record, config: { key: ${key} } }
  flaky: { type: ${flakyHandler.name}, config: { fail_times: 2 } }
pipelines:
  main:
    from: [dev]
    via: log
    handlers: ${handlers}
    batch: { max_samples: 10, max_wait: 5ms }
    workers: 2
    retry: { max_attempts: 5, delay: 30ms, max: 30ms, jitter: 0 }
`;
}

Deno.test("a core-only broker runs a pipeline whose tasks retry: every sample is delivered once", async () => {
  recordings.clear();
  const { runtime } = await createRuntime(yaml("core-retry", 100, "[flaky, rec]"));
  const broker = runtime.brokers.get("log")!;
  assert.deepEqual(broker.capabilities, { ordered: true });
  runtime.start();
  // While retries wait out their delay in the pool, the broker still counts them in flight.
  let heldInFlight = false;
  await waitFor(async () => {
    const depth = await broker.depth();
    if (depth.inflight > 0 && runtime.metrics.totals("main").tasks_retried > 0) {
      heldInFlight = true;
    }
    return recording("core-retry").seen.length >= 100;
  }, "100 samples through two retries each");
  const summary = await runtime.stop();
  const seen = recording("core-retry").seen;
  assert.equal(seen.length, 100);
  assert.equal(new Set(seen).size, 100, "a sample was delivered twice");
  assert.equal(summary.tasks_retried, 2 * summary.tasks_completed);
  assert.equal(summary.tasks_dead_lettered, 0);
  assert.ok(heldInFlight, "retries were never seen waiting in flight");
  assert.deepEqual(await broker.depth(), { queued: 0, inflight: 0, delayed: 0, dead: 0 });
});

Deno.test("stopping flushes retries the pool is holding instead of waiting out their delay", async () => {
  recordings.clear();
  const slow = yaml("core-stop", 10, "[flaky, rec]").replace(
    "delay: 30ms, max: 30ms",
    "delay: 1h, max: 1h",
  );
  const { runtime } = await createRuntime(slow);
  const broker = runtime.brokers.get("log")!;
  runtime.start();
  const pool = runtime.pipelines.get("main")!.pool!;
  // In flight at the broker with no worker busy: the failed task waits in the pool.
  await waitFor(
    async () => (await broker.depth()).inflight === 1 && pool.busy === 0,
    "the retry held in flight",
  );
  const started = Date.now();
  const summary = await runtime.stop();
  assert.ok(Date.now() - started < 30_000, "stop waited for the hour-long delay");
  assert.equal(summary.tasks_retried, 1);
  // Settled as a retry: back in the broker, unrun, nothing lost.
  assert.deepEqual(await broker.depth(), { queued: 1, inflight: 0, delayed: 0, dead: 0 });
});

Deno.test("the admin API answers 501 for what a core-only broker does not keep", async () => {
  const { runtime, app } = await adminFixture(yaml("core-admin", 0, "[rec]"));
  try {
    for (
      const [path, init] of [
        ["/api/v1/dlq", {}],
        ["/api/v1/dlq?all=true", { method: "DELETE" }],
        ["/api/v1/tasks/some-id", {}],
      ] as const
    ) {
      const res = await app.request(path, init);
      assert.equal(res.status, 501, path);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      const body = await res.json();
      assert.match(body.detail, /does not|No broker/);
    }
  } finally {
    await stopQuietly(runtime);
  }
});

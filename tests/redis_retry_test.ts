/**
 * Retries, dead letters and replay through the runtime on a Redis broker,
 * with short real delays.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { RedisBroker } from "../plugins/redis/mod.ts";
import { recording, recordings } from "./_fixtures/plugins.ts";
import { deleteKeys, HAVE_REDIS, randomPrefix, REDIS_URL } from "./_fixtures/redis_server.ts";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_REDIS, fn, sanitizeOps: false, sanitizeResources: false });

function yaml(prefix: string, handlers: string, role = "all", samples = 1): string {
  return `
role: ${role}
admin: { enabled: false }
devices:
  dev: { type: fixed, config: { count: ${samples}, batch: 1 } }
brokers:
  r:
    type: redis
    config:
      url: ${REDIS_URL}
      prefix: ${prefix}
      task_key: "${prefix}:task:{id}"
      retention: 1m
      poll_interval: 20ms
handlers:
  flaky2: { type: flaky, config: { fail_times: 2 } }
  broken: { type: flaky, config: { fail_times: 1000 } }
  rec: { type: record, config: { key: ${prefix} } }
pipelines:
  main:
    from: [dev]
    via: r
    handlers: [${handlers}]
    batch: { max_samples: 1, max_wait: 1ms }
    retry: { max_attempts: 3, delay: 30ms, max: 100ms, jitter: 0 }
`;
}

test("redis retries: a task failing twice then succeeding completes with attempts = 3", async () => {
  const prefix = randomPrefix("retry");
  const { runtime } = await createRuntime(yaml(prefix, "flaky2, rec"));
  try {
    runtime.start();
    const rec = recording(prefix);
    await waitFor(() => rec.tasks.size === 1, "the task to complete", 10_000);
    const [id] = [...rec.tasks];
    assert.equal(rec.attemptsByTask.get(id!), 3);
    const broker = runtime.brokers.get("r") as RedisBroker;
    await waitFor(async () => (await broker.getTask(id!))?.state === "completed", "completed");
    const record = await broker.getTask(id!);
    assert.equal(record?.attempts, 3);
    assert.match(record?.last_error?.message ?? "", /Simulated failure \(attempt 2\)/);
  } finally {
    await runtime.stop();
    recordings.delete(prefix);
    await deleteKeys(prefix);
  }
});

test("redis retries: an always failing task is dead-lettered after max attempts, then replayed to a fixed handler", async () => {
  const prefix = randomPrefix("dlq");
  const first = await createRuntime(yaml(prefix, "broken"));
  let fixed: Awaited<ReturnType<typeof createRuntime>> | undefined;
  try {
    first.runtime.start();
    const broker = first.runtime.brokers.get("r") as RedisBroker;
    await waitFor(async () => (await broker.depth()).dead === 1, "a dead letter", 10_000);
    const { items } = await broker.listDeadLetters({});
    assert.equal(items.length, 1);
    assert.equal(items[0]!.attempts, 3);
    assert.match(items[0]!.error.message, /Simulated failure \(attempt 3\)/);
    const id = items[0]!.task.id;
    assert.equal((await broker.getTask(id))?.state, "dead_letter");
    await first.runtime.stop();

    // The handler is fixed: a processor with a working chain takes the replayed task.
    fixed = await createRuntime(yaml(prefix, "rec", "processor"));
    fixed.runtime.start();
    const replayer = fixed.runtime.brokers.get("r") as RedisBroker;
    assert.equal(await replayer.replayDeadLetters({ ids: [id] }), 1);
    const rec = recording(prefix);
    await waitFor(() => rec.tasks.has(id), "the replayed task to run", 10_000);
    assert.equal(rec.attemptsByTask.get(id), 1, "attempts were reset");
    await waitFor(async () => (await replayer.getTask(id))?.state === "completed", "completed");
    assert.equal((await replayer.depth()).dead, 0);
  } finally {
    await first.runtime.stop();
    await fixed?.runtime.stop();
    recordings.delete(prefix);
    await deleteKeys(prefix);
  }
});

import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import { StartupError } from "../core/runtime/runtime.ts";
import { FakeClock } from "../core/testing.ts";
import { outages, recording, recordings } from "./_fixtures/plugins.ts";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";
import type { MemoryBroker } from "../plugins/memory/_broker.ts";

function pipelineYaml(opts: {
  key: string;
  count: number;
  handlers?: string;
  extraHandlers?: string;
  batch?: number;
  every?: string;
  pipeline?: string;
  role?: string;
}): string {
  return `
role: ${opts.role ?? "all"}
devices:
  dev:
    type: fixed
    config: { count: ${opts.count}, batch: ${opts.batch ?? 10}, every: ${opts.every ?? "0ms"} }
brokers:
  mem:
    type: memory
handlers:
  rec:
    type: record
    config: { key: ${opts.key} }
${opts.extraHandlers ?? ""}
pipelines:
  main:
    from: [dev]
    via: mem
    handlers: ${opts.handlers ?? "[rec]"}
    batch: { max_samples: 25, max_wait: 5ms }
    workers: 3
    retry: { max_attempts: 3, delay: 5ms, max: 20ms, jitter: 0 }
${opts.pipeline ?? ""}
`;
}

function expectedSeen(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `dev/temperature/${i}`);
}

Deno.test("pipeline delivers every sample to the handler exactly once", async () => {
  recordings.clear();
  const { runtime } = await createRuntime(pipelineYaml({ key: "once", count: 1000 }));
  runtime.start();
  await waitFor(() => recording("once").seen.length >= 1000, "1000 samples");
  const summary = await runtime.stop();
  const seen = recording("once").seen;
  assert.equal(seen.length, 1000);
  assert.deepEqual([...seen].sort(), expectedSeen(1000).sort());
  assert.equal(summary.samples_read, 1000);
  assert.equal(summary.samples_processed, 1000);
  assert.equal(summary.tasks_completed, recording("once").tasks.size);
  assert.equal(summary.tasks_retried, 0);
  assert.equal(summary.samples_dropped, 0);
});

Deno.test("a task that fails twice is retried with backoff and then completes", async () => {
  recordings.clear();
  const { runtime } = await createRuntime(pipelineYaml({
    key: "retry",
    count: 50,
    batch: 50,
    handlers: "[flaky, rec]",
    extraHandlers: "  flaky:\n    type: flaky\n    config: { fail_times: 2 }",
  }));
  runtime.start();
  await waitFor(() => recording("retry").seen.length >= 50, "50 samples after retries");
  const summary = await runtime.stop();
  const rec = recording("retry");
  assert.deepEqual([...rec.seen].sort(), expectedSeen(50).sort());
  for (const attempt of rec.attemptsByTask.values()) assert.equal(attempt, 3);
  assert.equal(summary.tasks_retried, 2 * rec.tasks.size);
  assert.equal(summary.tasks_completed, rec.tasks.size);
  assert.equal(summary.tasks_dead_lettered, 0);
  const id = [...rec.tasks][0]!;
  // Completed records stay retrievable for a while.
  const record = await (runtime.brokers.get("mem") as MemoryBroker).getTask(id);
  assert.equal(record?.state, "completed");
  assert.equal(record?.attempts, 3);
});

Deno.test("a task whose retries run out is dead-lettered with its last error", async () => {
  recordings.clear();
  const { runtime } = await createRuntime(pipelineYaml({
    key: "exhaust",
    count: 10,
    batch: 10,
    handlers: "[flaky, rec]",
    extraHandlers:
      "  flaky:\n    type: flaky\n    config: { fail_times: 99, message: Sensor DB down }",
  }));
  runtime.start();
  const broker = runtime.brokers.get("mem") as MemoryBroker;
  await waitFor(async () => (await broker.depth()).dead >= 1, "a dead letter");
  const summary = await runtime.stop();
  assert.equal(recording("exhaust").seen.length, 0);
  assert.equal(summary.tasks_dead_lettered, 1);
  assert.equal(summary.tasks_retried, 2);
  const page = await broker.listDeadLetters({});
  assert.equal(page.items.length, 1);
  const dead = page.items[0]!;
  assert.equal(dead.attempts, 3);
  assert.match(dead.error.message, /Sensor DB down \(attempt 3\)/);
  assert.equal(dead.error.permanent, false);
  assert.equal((await broker.getTask(dead.task.id))?.state, "dead_letter");
});

Deno.test("a permanent error dead-letters the task at once", async () => {
  recordings.clear();
  const { runtime } = await createRuntime(pipelineYaml({
    key: "perm",
    count: 10,
    batch: 10,
    handlers: "[flaky, rec]",
    extraHandlers:
      "  flaky:\n    type: flaky\n    config: { permanent: true, message: Bad calibration }",
  }));
  runtime.start();
  const broker = runtime.brokers.get("mem") as MemoryBroker;
  await waitFor(async () => (await broker.depth()).dead >= 1, "a dead letter");
  const summary = await runtime.stop();
  assert.equal(summary.tasks_retried, 0);
  assert.equal(summary.tasks_dead_lettered, 1);
  const dead = (await broker.listDeadLetters({})).items[0]!;
  assert.equal(dead.attempts, 1);
  assert.equal(dead.error.permanent, true);
  assert.equal(dead.error.message, "Bad calibration");
});

Deno.test("a graceful stop mid-stream loses nothing that was read", async () => {
  recordings.clear();
  const { runtime } = await createRuntime(
    pipelineYaml({ key: "graceful", count: 1_000_000, batch: 50, every: "1ms" }),
  );
  runtime.start();
  await waitFor(() => recording("graceful").seen.length >= 500, "some samples");
  const summary = await runtime.stop();
  const seen = recording("graceful").seen;
  assert.ok(summary.samples_read > 0);
  assert.equal(seen.length, summary.samples_read, "every sample read reached the handler");
  assert.equal(new Set(seen).size, seen.length, "no sample twice");
  assert.equal(summary.samples_dropped, 0);
  assert.equal(summary.tasks_abandoned, 0);
});

Deno.test("drop_oldest keeps the newest samples and counts the drops", async () => {
  recordings.clear();
  const { runtime } = await createRuntime(pipelineYaml({
    key: "drops",
    count: 100,
    batch: 100,
    pipeline: "    hub_queue: { capacity: 10, overflow: drop_oldest }",
  }));
  runtime.start();
  await waitFor(() => recording("drops").seen.length >= 10, "10 samples");
  const summary = await runtime.stop();
  assert.equal(summary.samples_dropped, 90);
  assert.deepEqual(
    [...recording("drops").seen].sort(),
    Array.from({ length: 10 }, (_, i) => `dev/temperature/${90 + i}`).sort(),
  );
  const text = await runtime.metrics.metrics();
  assert.match(
    text,
    /telemetry_samples_dropped_total\{pipeline="main",reason="queue_full_oldest"\} 90/,
  );
});

Deno.test("split roles are refused with the in-process broker", async () => {
  for (const role of ["hub", "processor"] as const) {
    // In the file: the configuration loader refuses it, as validate does.
    await assert.rejects(
      createRuntime(pipelineYaml({ key: "roles", count: 1, role })),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, new RegExp(`brokers\\.mem\\.type: Role "${role}" cannot use`));
        assert.match(error.message, /Split roles need a shared broker/);
        return true;
      },
    );
    // Given to the runtime alone: it refuses too, from the broker instance.
    await assert.rejects(
      createRuntime(pipelineYaml({ key: "roles", count: 1 }), { role }),
      (error: unknown) => {
        assert.ok(error instanceof StartupError);
        assert.match(error.message, new RegExp(`Role "${role}" cannot use broker "mem"`));
        assert.match(error.message, /Split roles need a shared broker/);
        return true;
      },
    );
  }
});

Deno.test("high-priority devices' tasks are taken before the others", async () => {
  recordings.clear();
  const yaml = `
devices:
  slow_lane: { type: fixed, config: { count: 200, batch: 200 } }
  fast_lane: { type: fixed, priority: high, config: { count: 200, batch: 200 } }
brokers: { mem: { type: memory } }
handlers: { rec: { type: record, config: { key: prio } } }
pipelines:
  main:
    from: [slow_lane, fast_lane]
    via: mem
    handlers: [rec]
    priority: low
    batch: { max_samples: 10, max_wait: 100ms }
    workers: 1
    prefetch: 1
`;
  const { runtime } = await createRuntime(yaml);
  // Fill the broker before any worker runs, then let one worker drain it.
  for (const p of runtime.pipelines.values()) {
    p.gateway!.start();
    for (const d of p.devices) d.start();
  }
  const broker = runtime.brokers.get("mem") as MemoryBroker;
  await waitFor(async () => (await broker.depth()).queued >= 40, "40 queued tasks");
  runtime.start();
  await waitFor(() => recording("prio").seen.length >= 400, "400 samples");
  await runtime.stop();
  const order = recording("prio").seen.map((s) => s.split("/")[0]);
  const firstHalf = order.slice(0, 200);
  const fast = firstHalf.filter((d) => d === "fast_lane").length;
  // Weighted, not strict: high goes first most of the time, low is never starved.
  assert.ok(fast >= 120, `expected mostly fast_lane first, got ${fast}/200`);
  assert.ok(fast < 200, "low priority still got a turn");
});

Deno.test("pipelines sharing one broker each run their own chain on their own tasks", async () => {
  recordings.clear();
  const { runtime } = await createRuntime(`
devices:
  a: { type: fixed, config: { count: 300, batch: 10 } }
  b: { type: fixed, config: { count: 300, batch: 10 } }
brokers: { shared: { type: memory } }
handlers:
  rec_a: { type: record, config: { key: share_a } }
  rec_b: { type: record, config: { key: share_b } }
pipelines:
  pa: { from: [a], via: shared, handlers: [rec_a], batch: { max_samples: 10, max_wait: 1ms } }
  pb: { from: [b], via: shared, handlers: [rec_b], batch: { max_samples: 10, max_wait: 1ms } }
`);
  runtime.start();
  await waitFor(
    () => recording("share_a").seen.length + recording("share_b").seen.length >= 600,
    "600 samples",
  );
  await runtime.stop();
  assert.equal(recording("share_a").seen.length, 300);
  assert.ok(recording("share_a").seen.every((s) => s.startsWith("a/")));
  assert.equal(recording("share_b").seen.length, 300);
  assert.ok(recording("share_b").seen.every((s) => s.startsWith("b/")));
});

Deno.test("an unavailable dependency holds tasks without spending attempts, logged once when it goes and once when it is back", async () => {
  recordings.clear();
  outages.set("down", true);
  const { runtime, lines } = await createRuntime(pipelineYaml({
    key: "down",
    count: 200,
    handlers: "[out]",
    extraHandlers: "  out: { type: outage, config: { key: down } }",
  }));
  try {
    runtime.start();
    await waitFor(
      () => runtime.metrics.totals("main").tasks_released >= 10,
      "tasks held back several times",
    );
    assert.equal(recording("down").seen.length, 0);
    outages.set("down", false);
    await waitFor(() => recording("down").seen.length >= 200, "every sample once it is back");
    const summary = await runtime.stop();
    assert.equal(summary.tasks_dead_lettered, 0, "max_attempts is 3, the outage spent none");
    assert.equal(summary.tasks_retried, 0);
    assert.ok([...recording("down").attemptsByTask.values()].every((a) => a === 1));
    assert.equal(lines.filter((l) => String(l.msg).includes("is unavailable")).length, 1);
    assert.equal(lines.filter((l) => String(l.msg).includes("available again")).length, 1);
  } finally {
    outages.delete("down");
    if (runtime.state !== "stopped") await runtime.stop();
  }
});

Deno.test("the stop summary counts from the start of processing, not from start-up", async () => {
  const clock = new FakeClock(1_000_000);
  const { runtime } = await createRuntime(pipelineYaml({ key: "uptime", count: 0 }), { clock });
  await clock.advance(7_000); // start-up work: opening databases, connecting
  runtime.start();
  await clock.advance(2_000);
  const summary = await runtime.stop();
  assert.equal(summary.uptime_ms, 2_000);
});

import assert from "node:assert/strict";
import type { ResolvedConfig } from "../config/schema.ts";
import { recordingLogger } from "../testing.ts";
import { RuntimeMetrics } from "./metrics.ts";
import { resolveThreads, ThreadPool } from "./threads.ts";

const FAKE = new URL("../../tests/_fixtures/fake_thread.ts", import.meta.url);

function pool(setup: Record<string, unknown>, count = 2) {
  const { logger, lines } = recordingLogger();
  const restarts: number[] = [];
  const threads = new ThreadPool({
    module: FAKE,
    count,
    start: () => ({
      config: setup as unknown as ResolvedConfig,
      plugins: [],
      baseDir: ".",
      dataDir: ".",
      seed: 1,
    }),
    logger,
    onRestart: (n) => restarts.push(n),
  });
  return { threads, lines, restarts };
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!await condition()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("resolveThreads() takes a number as it is and auto as the core count but one", () => {
  assert.equal(resolveThreads(3), 3);
  assert.equal(resolveThreads("auto", 2), 1);
  assert.equal(resolveThreads("auto", 8), 7);
  assert.equal(resolveThreads("auto", 1), 1);
  assert.equal(resolveThreads("auto"), Math.max(1, navigator.hardwareConcurrency - 1));
});

Deno.test("ThreadPool: a scrape sums every thread's counters into the main isolate's series", async () => {
  const { threads } = pool({ completed: 7 });
  const metrics = new RuntimeMetrics();
  metrics.addOtherIsolates(threads);
  metrics.totals("p").tasks_completed = 3;
  threads.start();
  try {
    await until(() => metrics.combinedTotals("p").tasks_completed === 17, "threads' totals");
    assert.equal(metrics.grandTotals().tasks_completed, 17);
    assert.equal(metrics.totals("p").tasks_completed, 3, "own totals stay this isolate's");
    const text = await metrics.metrics();
    assert.match(text, /^fake_tasks_total\{pipeline="p"\} 14$/m);
    const checks = await threads.readiness(500);
    assert.deepEqual(checks.map((c) => [c.name, c.ready]), [["thread:1", true], [
      "thread:2",
      true,
    ]]);
  } finally {
    await threads.stop(1000);
  }
  // Stopped threads' counts stay: counters never go back.
  assert.equal(metrics.combinedTotals("p").tasks_completed, 17);
  assert.match(await metrics.metrics(), /^fake_tasks_total\{pipeline="p"\} 14$/m);
});

Deno.test("ThreadPool: readiness names a thread's failing check", async () => {
  const { threads } = pool({ completed: 0, ready: false }, 1);
  threads.start();
  try {
    let checks = await threads.readiness(500);
    await until(
      async () => (checks = await threads.readiness(500))[0]!.reason !== "Thread is starting",
      "ready",
    );
    assert.deepEqual(checks, [{ name: "thread:1", ready: false, reason: "broker:b: Broker down" }]);
  } finally {
    await threads.stop(1000);
  }
});

Deno.test("ThreadPool: a crashed thread is logged, restarted, and its counts are kept", async () => {
  const { threads, lines, restarts } = pool({ completed: 5, crash: true }, 1);
  const metrics = new RuntimeMetrics();
  metrics.addOtherIsolates(threads);
  threads.start();
  try {
    await until(() => metrics.combinedTotals("p").tasks_completed === 5, "first report");
    // The report that precedes the crash is what the pool keeps of the old thread.
    assert.match(await metrics.metrics(), /^fake_tasks_total\{pipeline="p"\} 5$/m);
    await until(() => restarts.length === 1, "a restart");
    assert.ok(
      lines.some((l) =>
        l.msg ===
          "Thread stopped unexpectedly; starting it again (tasks it held return to the broker)" &&
        l.thread === 1 && String(l.reason).includes("Fake thread crashed")
      ),
      JSON.stringify(lines),
    );
    // The new thread reports its own 5: old and new add up.
    await until(() => metrics.combinedTotals("p").tasks_completed === 10, "the new thread");
  } finally {
    await threads.stop(1000);
  }
});

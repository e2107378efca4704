import assert from "node:assert/strict";
import { systemClock } from "../clock.ts";
import { PermanentError } from "../errors.ts";
import type { BrokerInstance } from "../plugin.ts";
import type { Sample } from "../sample.ts";
import type { Task } from "../task.ts";
import { recordingLogger } from "../testing.ts";
import { Gateway } from "./gateway.ts";
import { HubQueue } from "./hub_queue.ts";
import { RuntimeMetrics } from "./metrics.ts";

/**
 * A broker that holds what it is given, but can never take a task holding
 * the value 13. The gateway only calls enqueue().
 */
function pickyBroker(): { broker: BrokerInstance; calls: () => number; held: Task[] } {
  let calls = 0;
  const held: Task[] = [];
  const broker = {
    shared: false,
    enqueue(tasks: readonly Task[]): Promise<void> {
      calls++;
      for (const t of tasks) {
        const samples = (t.payload as { samples: Sample[] }).samples;
        if (samples.some((s) => s.value === 13)) {
          return Promise.reject(new PermanentError(`Cannot encode task "${t.id}"`));
        }
      }
      held.push(...tasks);
      return Promise.resolve();
    },
  } as Partial<BrokerInstance> as BrokerInstance;
  return { broker, calls: () => calls, held };
}

Deno.test("Gateway drops and counts only the task a broker can never take, and never retries it", async () => {
  const { broker, calls, held } = pickyBroker();
  const metrics = new RuntimeMetrics();
  const { logger, lines } = recordingLogger();
  const queue = new HubQueue({ capacity: 10_000, overflow: "block" });
  const gateway = new Gateway({
    pipeline: "main",
    taskType: "telemetry.analyze",
    priority: "normal",
    devicePriority: new Map(),
    maxSamples: 10,
    maxWait: 1,
    queue,
    broker,
    clock: systemClock,
    logger,
    metrics,
  });
  // Three full tasks in one enqueue call: the middle one holds the 13.
  queue.push(Array.from({ length: 30 }, (_, i) => ({ device: "d", metric: "m", value: i, ts: i })));
  gateway.start();
  queue.close();
  await gateway.stop();
  assert.equal(held.length, 2, "the other two tasks were enqueued");
  assert.equal(metrics.totals("main").samples_dropped, 10);
  assert.equal(metrics.totals("main").tasks_enqueued, 2);
  assert.equal(calls(), 4, "one batch call, then one call per task; no retry loop");
  assert.ok(lines.some((l) => l.level === "error" && l.samples === 10));
  assert.match(
    await metrics.metrics(),
    /telemetry_samples_dropped_total\{pipeline="main",reason="unencodable"\} 10/,
  );
});

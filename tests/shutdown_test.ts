import assert from "node:assert/strict";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";

Deno.test("stop gives up on an unreachable broker after the grace period and counts the drops", async () => {
  const { runtime, lines } = await createRuntime(`
shutdown: { grace: 200ms }
devices:
  dev: { type: fixed, config: { count: 30, batch: 10 } }
brokers:
  down: { type: unreachable }
pipelines:
  main: { from: [dev], via: down, batch: { max_samples: 10, max_wait: 1ms } }
`);
  runtime.start();
  await waitFor(
    () => lines.some((l) => l.msg === "Cannot enqueue tasks; will keep trying"),
    "a warning",
  );
  const summary = await runtime.stop();
  assert.equal(summary.samples_read, 30);
  assert.equal(summary.samples_dropped, 30);
  assert.ok(lines.some((l) => l.msg === "Broker unavailable at shutdown; samples dropped"));
  const text = await runtime.metrics.metrics();
  assert.match(
    text,
    /telemetry_samples_dropped_total\{pipeline="main",reason="broker_unavailable"\} 30/,
  );
});

Deno.test("stop does not wait forever for a handler that never returns", async () => {
  const { runtime, lines } = await createRuntime(`
shutdown: { grace: 100ms }
devices:
  dev: { type: fixed, config: { count: 10, batch: 10 } }
brokers:
  mem: { type: memory }
handlers:
  stuck: { type: hang }
pipelines:
  main: { from: [dev], via: mem, handlers: [stuck], workers: 1 }
`);
  runtime.start();
  const broker = runtime.brokers.get("mem")!;
  await waitFor(async () => (await broker.depth()).inflight === 1, "the task in flight");
  const summary = await runtime.stop();
  assert.equal(summary.tasks_completed, 0);
  assert.equal(summary.tasks_abandoned, 1, "the stuck task is reported lost with the process");
  assert.ok(
    lines.some((l) => l.msg === "Handlers still running after the grace period; not waiting"),
  );
});

Deno.test("stop does not wait forever for a device that ignores its abort signal", async () => {
  const { runtime, lines } = await createRuntime(`
shutdown: { grace: 100ms }
devices:
  dev: { type: stubborn }
brokers:
  mem: { type: memory }
pipelines:
  main: { from: [dev], via: mem }
`);
  runtime.start();
  await runtime.stop();
  assert.ok(
    lines.some((l) => l.msg === "Devices still running after the grace period; not waiting"),
  );
});

Deno.test("an unreachable broker is reported once per outage, not once per worker per second", async () => {
  const { runtime, lines } = await createRuntime(`
shutdown: { grace: 100ms }
devices:
  dev: { type: fixed, config: { count: 0 } }
brokers:
  down: { type: unreachable }
pipelines:
  main: { from: [dev], via: down, workers: 4 }
`);
  // Reserve on this broker waits; make it fail instead.
  runtime.brokers.get("down")!.reserve = () => Promise.reject(new Error("Connection refused"));
  runtime.start();
  await waitFor(
    () => lines.some((l) => l.msg === "Cannot reserve tasks; will keep trying"),
    "a warning",
  );
  await new Promise((r) => setTimeout(r, 50));
  await runtime.stop();
  assert.equal(lines.filter((l) => l.msg === "Cannot reserve tasks; will keep trying").length, 1);
});

Deno.test("a task cut short by the grace deadline is released, not retried", async () => {
  const { runtime } = await createRuntime(`
shutdown: { grace: 100ms }
devices:
  dev: { type: fixed, config: { count: 10, batch: 10 } }
brokers:
  mem: { type: memory }
handlers:
  busy: { type: abortable }
pipelines:
  main: { from: [dev], via: mem, handlers: [busy], workers: 1 }
`);
  runtime.start();
  const broker = runtime.brokers.get("mem")!;
  await waitFor(async () => (await broker.depth()).inflight === 1, "the task in flight");
  const summary = await runtime.stop();
  assert.equal(summary.tasks_released, 1);
  assert.equal(summary.tasks_retried, 0);
  assert.equal(summary.tasks_dead_lettered, 0);
});

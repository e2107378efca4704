import assert from "node:assert/strict";
import { FakeClock } from "../testing.ts";
import type { Delivery } from "../broker.ts";
import type { Outcome } from "./_outcome.ts";
import { DeferredRetries } from "./_deferred_retries.ts";

function outcome(id: string, kind: "retry" | "completed", delay = 0): Outcome {
  const delivery: Delivery = {
    task: { id, type: "t", payload: {}, attempts: 0, created_at: 0 },
    receipt: id,
  };
  const settlement = kind === "retry"
    ? {
      delivery,
      outcome: "retry" as const,
      delay,
      error: { message: "x", name: "Error", permanent: false },
    }
    : { delivery, outcome: "completed" as const };
  return { settlement, pipeline: "main", samples: 0 };
}

function recorder() {
  const settled: [string, string, number | undefined][] = [];
  const settle = (outcomes: Outcome[]) => {
    for (const { settlement: s } of outcomes) {
      settled.push([s.delivery.task.id, s.outcome, s.outcome === "retry" ? s.delay : undefined]);
    }
    return Promise.resolve();
  };
  return { settled, settle };
}

Deno.test("DeferredRetries holds a delayed retry until it is due, then settles it with delay 0", async () => {
  const clock = new FakeClock(0);
  const { settled, settle } = recorder();
  const deferred = new DeferredRetries(clock, settle);
  const now = deferred.split([
    outcome("done", "completed"),
    outcome("later", "retry", 1000),
    outcome("at-once", "retry", 0),
  ]);
  assert.deepEqual(now.map((o) => o.settlement.delivery.task.id), ["done", "at-once"]);
  assert.equal(deferred.size, 1);
  await clock.advance(999);
  assert.deepEqual(settled, []);
  await clock.advance(1);
  assert.deepEqual(settled, [["later", "retry", 0]]);
  assert.equal(deferred.size, 0);
});

Deno.test("DeferredRetries.flush() settles what it holds at once", async () => {
  const clock = new FakeClock(0);
  const { settled, settle } = recorder();
  const deferred = new DeferredRetries(clock, settle);
  deferred.split([outcome("a", "retry", 3_600_000), outcome("b", "retry", 5)]);
  await deferred.flush();
  assert.deepEqual(settled.sort(), [["a", "retry", 0], ["b", "retry", 0]]);
  assert.equal(deferred.size, 0);
});

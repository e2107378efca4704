import assert from "node:assert/strict";
import type { Sample } from "../sample.ts";
import { type Ack, HubQueue } from "./hub_queue.ts";

const batch = (n: number, from = 0): Sample[] =>
  Array.from(
    { length: n },
    (_, i) => ({ device: "d", metric: "m", value: from + i, ts: from + i }),
  );

/** An ack that records how it settled. */
function recordedAck(): Ack & { state: string } {
  const ack = {
    state: "waiting",
    resolve: () => ack.state = "resolved",
    reject: (e: Error) => ack.state = `rejected: ${e.message}`,
  };
  return ack;
}

Deno.test("HubQueue acks a blocking batch only once all of it was taken and acknowledged", () => {
  const queue = new HubQueue({ capacity: 100, overflow: "block" });
  const a = recordedAck(), b = recordedAck();
  queue.push(batch(3), a);
  queue.push(batch(3, 3), b);
  assert.equal(queue.acksWaiting, true);
  queue.take(4); // all of a, part of b
  assert.equal(a.state, "waiting", "not before the taker acknowledges");
  queue.acknowledge();
  assert.equal(a.state, "resolved");
  assert.equal(b.state, "waiting", "b is not all taken yet");
  queue.take(10);
  queue.acknowledge();
  assert.equal(b.state, "resolved");
  assert.equal(queue.acksWaiting, false);
});

Deno.test("HubQueue rejects waiting acks when the taker gives up, and pushes after close", () => {
  const queue = new HubQueue({ capacity: 100, overflow: "block" });
  const a = recordedAck();
  queue.push(batch(2), a);
  queue.take(2);
  queue.failAcks(new Error("broker gone"));
  assert.equal(a.state, "rejected: broker gone");
  queue.close();
  const late = recordedAck();
  queue.push(batch(1), late);
  assert.match(late.state, /^rejected: The hub queue is closed/);
});

Deno.test("HubQueue acks at once under a drop policy, which may drop the batch later anyway", () => {
  const queue = new HubQueue({ capacity: 2, overflow: "drop_oldest" });
  const a = recordedAck();
  queue.push(batch(3), a);
  assert.equal(a.state, "resolved");
  assert.equal(queue.acksWaiting, false);
});

Deno.test("HubQueue.waitFor() ends early when a batch waits for its ack", async () => {
  const queue = new HubQueue({ capacity: 100, overflow: "block" });
  const waiting = queue.waitFor(50);
  queue.push(batch(1), recordedAck());
  await waiting; // resolves although 1 < 50
  assert.equal(queue.size, 1);
});

Deno.test("HubQueue keeps a blocked batch's ack until the batch is admitted and taken", async () => {
  const queue = new HubQueue({ capacity: 2, overflow: "block" });
  queue.push(batch(2));
  const a = recordedAck();
  const blocked = queue.push(batch(2, 2), a);
  assert.ok(blocked instanceof Promise);
  queue.take(2);
  await blocked;
  queue.acknowledge();
  assert.equal(a.state, "waiting");
  queue.take(2);
  queue.acknowledge();
  assert.equal(a.state, "resolved");
});

Deno.test("HubQueue reports once per batch how long its first sample took to arrive and waited", () => {
  let now = 100;
  const waits: [number, number][] = [];
  const queue = new HubQueue({
    capacity: 100,
    overflow: "block",
    onWait: (before, inQueue) => waits.push([before, inQueue]),
    now: () => now,
  });
  const stamped = (ts: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({ device: "d", metric: "m", value: i, ts }));
  queue.push(stamped(90, 3));
  now = 105;
  queue.push(stamped(101, 2));
  now = 110;
  queue.take(2); // the first batch starts: reported
  queue.take(2); // the rest of the first, then the second starts: reported
  queue.take(10);
  assert.deepEqual(waits, [[10, 10], [4, 5]]);
});

import assert from "node:assert/strict";
import type { HandlerContext, Sample } from "../../core/mod.ts";
import { FakeClock, testContext } from "../../core/testing.ts";
import discard from "./mod.ts";

function handlerContext(): HandlerContext {
  return {
    task: { id: "t1", type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 },
    attempt: 1,
    pipeline: "bench",
    signal: new AbortController().signal,
    clock: new FakeClock(),
    publish() {},
    published: () => [],
  };
}

Deno.test("discard drops every batch without error and passes nothing on", async () => {
  const handler = await discard.create(discard.config.parse({}), testContext());
  const batch: Sample[] = Array.from({ length: 1000 }, (_, i) => ({
    device: "d",
    metric: "m",
    value: i,
    ts: i,
  }));
  const first = await handler.handle(batch, handlerContext());
  const second = await handler.handle([], handlerContext());
  assert.deepEqual(first, []);
  assert.equal(first, second, "one shared result, nothing allocated per call");
  assert.ok(Object.isFrozen(first), "the shared result cannot be filled by others");
  assert.equal(batch.length, 1000, "the batch itself is not touched");
});

Deno.test("discard keeps no references to what it handled", async () => {
  const handler = await discard.create(discard.config.parse({}), testContext());
  const before = Object.entries(handler);
  await handler.handle([{ device: "d", metric: "m", value: 1, ts: 0 }], handlerContext());
  const after = Object.entries(handler);
  assert.deepEqual(after, before);
  assert.ok(after.every(([, v]) => typeof v === "function"), "the instance holds only methods");
});

Deno.test("discard config is empty and strict", () => {
  assert.deepEqual(discard.config.parse({}), {});
  const result = discard.config.safeParse({ fail_rate: 0.1 });
  assert.equal(result.success, false);
  assert.match(result.error!.issues[0]!.message, /Unrecognized key: "fail_rate"/);
});

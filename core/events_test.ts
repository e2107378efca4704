import assert from "node:assert/strict";
import { createEventBus } from "./events.ts";
import { recordingLogger } from "./testing.ts";

Deno.test("event bus delivers to subscribers of the topic until they unsubscribe", () => {
  const bus = createEventBus(recordingLogger().logger);
  const got: unknown[] = [];
  const off = bus.subscribe("anomaly", (item) => got.push(item));
  bus.subscribe("other", () => got.push("wrong"));
  bus.publish("anomaly", 1);
  off();
  bus.publish("anomaly", 2);
  assert.deepEqual(got, [1]);
});

Deno.test("a failing subscriber is logged and others still receive the item", () => {
  const { logger, lines } = recordingLogger();
  const bus = createEventBus(logger);
  const got: unknown[] = [];
  bus.subscribe("t", () => {
    throw new Error("boom");
  });
  bus.subscribe("t", (item) => got.push(item));
  bus.publish("t", "x");
  assert.deepEqual(got, ["x"]);
  assert.equal(lines[0]?.msg, "Event subscriber failed");
  assert.equal(lines[0]?.error, "boom");
});

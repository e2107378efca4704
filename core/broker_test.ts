import assert from "node:assert/strict";
import { ALL_CAPABILITIES, checkCapabilities, hasCapability } from "./broker.ts";
import type { BrokerInstance } from "./broker.ts";

const none = () => Promise.resolve(undefined);

function core(extra: Partial<BrokerInstance> & Pick<BrokerInstance, "capabilities">) {
  const unused = () => Promise.reject(new Error("not used"));
  return {
    shared: false,
    enqueue: unused,
    reserve: unused,
    started: unused,
    settle: unused,
    depth: unused,
    health: unused,
    close: unused,
    ...extra,
  } as BrokerInstance;
}

Deno.test("checkCapabilities() accepts the core alone and a full declaration with its methods", () => {
  checkCapabilities(core({ capabilities: {} }), "core");
  checkCapabilities(
    core({
      capabilities: ALL_CAPABILITIES,
      getTask: none,
      listDeadLetters: () => Promise.resolve({ items: [] }),
      replayDeadLetters: () => Promise.resolve(0),
      purgeDeadLetters: () => Promise.resolve(0),
    }),
    "full",
  );
});

Deno.test("checkCapabilities() refuses a declared capability without its methods", () => {
  assert.throws(
    () => checkCapabilities(core({ capabilities: { taskRecords: true } }), "main"),
    { message: 'Broker "main" declares capability "taskRecords" but has no getTask()' },
  );
  assert.throws(
    () =>
      checkCapabilities(
        core({ capabilities: { deadLetterBrowsing: true }, listDeadLetters: none as never }),
        "main",
      ),
    /declares capability "deadLetterBrowsing" but has no replayDeadLetters\(\)/,
  );
});

Deno.test("checkCapabilities() refuses methods of a capability that is not declared", () => {
  assert.throws(
    () => checkCapabilities(core({ capabilities: {}, getTask: none }), "main"),
    { message: 'Broker "main" has getTask() but does not declare capability "taskRecords"' },
  );
});

Deno.test("checkCapabilities() refuses a missing declaration and unknown capability names", () => {
  assert.throws(() => checkCapabilities({}, "old"), /Broker "old" declares no capabilities/);
  assert.throws(
    () => checkCapabilities({ capabilities: { streams: true } as never }, "main"),
    /declares unknown capability "streams"; known: priorities, delayedRetries/,
  );
});

Deno.test("hasCapability() follows the declaration", () => {
  const broker = core({ capabilities: { priorities: true, taskRecords: true }, getTask: none });
  assert.equal(hasCapability(broker, "priorities"), true);
  assert.equal(hasCapability(broker, "taskRecords"), true);
  assert.equal(hasCapability(broker, "delayedRetries"), false);
  assert.equal(hasCapability(broker, "deadLetterBrowsing"), false);
});

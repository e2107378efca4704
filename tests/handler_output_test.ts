import assert from "node:assert/strict";
import type { MemoryBroker } from "../plugins/memory/mod.ts";
import { adminFixture, stopQuietly } from "./_fixtures/admin.ts";
import { recording } from "./_fixtures/plugins.ts";
import { waitFor } from "./_fixtures/runtime.ts";

const CONFIG = `
devices:
  boiler: { type: fixed, config: { count: 0 } }
brokers:
  mem: { type: memory }
handlers:
  to_text: { type: stringify }
  rec: { type: record, config: { key: handler_output } }
pipelines:
  main:
    from: [boiler]
    via: mem
    handlers: [to_text, rec]
    retry: { max_attempts: 5 }
    batch: { max_samples: 100, max_wait: 5ms }
`;

Deno.test("a handler returning string values fails its task for good, naming the handler and field", async () => {
  const { app, runtime, lines } = await adminFixture(CONFIG);
  runtime.start();
  const batch = [21.5, 22, 22.5].map((value) => ({
    device: "boiler",
    metric: "temperature",
    value,
  }));
  const res = await app.request("/api/v1/samples", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(batch),
  });
  assert.equal(res.status, 202);
  const broker = runtime.brokers.get("mem") as MemoryBroker;
  await waitFor(async () => (await broker.depth()).dead === 1, "the task dead-lettered");
  const [letter] = (await broker.listDeadLetters({})).items;
  assert.equal(
    letter!.error.message,
    'Handler "to_text" returned an invalid sample [0]: "value" must be a finite number, ' +
      'not the string "21.5"',
  );
  assert.equal(letter!.error.permanent, true);
  assert.equal(letter!.attempts, 1, "permanent: not retried");
  // Nothing lost: the samples as they entered are in the dead letter; no later handler saw any.
  const kept = (letter!.task.payload as { samples: { value: number }[] }).samples;
  assert.deepEqual(kept.map((s) => s.value), [21.5, 22, 22.5]);
  assert.deepEqual(recording("handler_output").seen, []);
  assert.ok(lines.some((l) => l.msg === "Task dead-lettered" && /to_text/.test(String(l.error))));
  await stopQuietly(runtime);
});

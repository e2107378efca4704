import assert from "node:assert/strict";
import type { ResolvedConfig } from "../config/schema.ts";
import { planReload } from "./_reload.ts";

/** Two pipelines: `a` runs handler type `scale`, `b` type `record`; nothing else differs. */
function config(): ResolvedConfig {
  const pipeline = (device: string, handler: string) => ({
    from: [device],
    via: "mem",
    handlers: [handler],
    routes: {},
  });
  // Only the fields planReload reads: the rest of a resolved config does not matter here.
  return {
    devices: { da: { type: "fixed", config: {} }, db: { type: "fixed", config: {} } },
    brokers: { mem: { type: "memory", config: {} } },
    handlers: { ha: { type: "scale", config: {} }, hb: { type: "record", config: {} } },
    pipelines: { a: pipeline("da", "ha"), b: pipeline("db", "hb") },
  } as unknown as ResolvedConfig;
}

Deno.test("planReload() restarts what uses a plugin whose code changed, and keeps the rest", () => {
  const same = planReload(config(), config());
  assert.deepEqual([same.restarted, same.unchanged], [[], ["a", "b"]]);
  const plan = planReload(config(), config(), new Set(["handler:scale"]));
  assert.deepEqual([plan.restarted, plan.unchanged], [["a"], ["b"]]);
  assert.equal(plan.handlerKept("ha"), false, "the old instance of the changed code goes");
  assert.equal(plan.handlerKept("hb"), true);
  assert.equal(plan.brokerKept("mem"), true);
  const broker = planReload(config(), config(), new Set(["broker:memory"]));
  assert.deepEqual(broker.restarted, ["a", "b"]);
  assert.equal(broker.brokerKept("mem"), false);
});

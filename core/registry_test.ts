import assert from "node:assert/strict";
import { PluginError } from "./errors.ts";
import { defineBroker, defineHandler } from "./plugin.ts";
import { checkDefinition } from "./registry.ts";
import { z } from "./schema.ts";

const create = () => {
  throw new Error("not created in this test");
};

Deno.test("checkDefinition() takes shared: true or false on a broker and refuses it elsewhere", () => {
  for (const shared of [true, false]) {
    const broker = defineBroker({
      name: "b",
      summary: "A broker",
      config: z.strictObject({}),
      shared,
      create,
    });
    assert.equal(checkDefinition(broker, "./b.ts").shared, shared);
  }
  const handler = {
    ...defineHandler({ name: "h", summary: "A handler", config: z.strictObject({}), create }),
    shared: true,
  };
  assert.throws(() => checkDefinition(handler, "./h.ts"), (error: unknown) => {
    assert.ok(error instanceof PluginError);
    assert.equal(
      error.message,
      'Plugin module "./h.ts" (plugin "h") has shared: true; only a broker declares shared, as true or false',
    );
    return true;
  });
  const loose = {
    ...defineBroker({ name: "b", summary: "A broker", config: z.strictObject({}), create }),
    shared: "yes",
  };
  assert.throws(() => checkDefinition(loose, "./b.ts"), /has shared: "yes"/);
});

import assert from "node:assert/strict";
import { PluginError } from "./errors.ts";
import { defineBroker, defineHandler } from "./plugin.ts";
import { pathToFileURL } from "node:url";
import { checkDefinition, freshModuleUrl } from "./registry.ts";
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

Deno.test("freshModuleUrl() gives a changed file: module a new URL, and the first one back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const url = pathToFileURL(`${dir}/plugin.ts`).href;
    await Deno.writeTextFile(`${dir}/plugin.ts`, "export default 1;\n");
    assert.equal(await freshModuleUrl(url), url);
    assert.equal(await freshModuleUrl(url), url, "unchanged: the cached module");
    await Deno.writeTextFile(`${dir}/plugin.ts`, "export default 2;\n");
    const changed = await freshModuleUrl(url);
    assert.match(changed, /\?v=[0-9a-f]{16}$/);
    assert.equal((await import(changed)).default, 2);
    await Deno.writeTextFile(`${dir}/plugin.ts`, "export default 1;\n");
    assert.equal(await freshModuleUrl(url), url, "back to the first content");
    for (const fixed of ["npm:left-pad@1.3.0", "https://example.com/p.ts", "jsr:@x/y@1"]) {
      assert.equal(await freshModuleUrl(fixed), fixed);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

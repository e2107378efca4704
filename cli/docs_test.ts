import assert from "node:assert/strict";
import { configSchema } from "../core/config/schema.ts";
import { describeFields } from "../core/plugin_docs.ts";
import { BUILTIN_PLUGINS } from "./builtins.ts";
import { expectedTables, normalizeTables, replaceRegion } from "./docs.ts";

Deno.test("every README's config table matches its schema (run `deno task docs`)", async () => {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  for (const { path, table } of expectedTables(root)) {
    const text = await Deno.readTextFile(path);
    const next = replaceRegion(text, table);
    assert.notEqual(next, undefined, `${path} has no config:begin/config:end region`);
    assert.equal(
      normalizeTables(next!),
      normalizeTables(text),
      `${path} is stale; run \`deno task docs\``,
    );
  }
});

Deno.test("every field of every built-in plugin, nested and variant ones included, has a description", () => {
  const blank: string[] = [];
  for (const plugin of BUILTIN_PLUGINS) {
    for (const field of describeFields(plugin.config)) {
      if (field.description.trim() === "") {
        blank.push(`${plugin.kind} ${plugin.name}: ${field.path}`);
      }
    }
  }
  for (const field of describeFields(configSchema)) {
    if (field.description.trim() === "") blank.push(`telemetry.yaml: ${field.path}`);
  }
  assert.deepEqual(blank, []);
});

import assert from "node:assert/strict";
import { loadConfigText } from "../core/config/mod.ts";
import { configSchema } from "../core/config/schema.ts";
import { ConfigError } from "../core/errors.ts";
import { describeFields } from "../core/plugin_docs.ts";
import { BUILTIN_PLUGINS, builtinRegistry } from "./builtins.ts";
import { expectedTables, normalizeTables, replaceRegion } from "./docs.ts";

Deno.test("every README's config table and the admin route table match their schemas (run `deno task docs`)", async () => {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  for (const { path, table, region = "config" } of await expectedTables(root)) {
    const text = await Deno.readTextFile(path);
    const next = replaceRegion(text, table, region);
    assert.notEqual(next, undefined, `${path} has no ${region}:begin/${region}:end region`);
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

Deno.test("every complete telemetry.yaml example in the plugin READMEs validates", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const failures: string[] = [];
  let checked = 0;
  for (const kind of ["plugins", "handlers"]) {
    for await (const entry of Deno.readDir(`${root}${kind}`)) {
      const path = `${root}${kind}/${entry.name}/README.md`;
      const text = await Deno.readTextFile(path).catch(() => "");
      for (const [, block] of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
        // Fragments (one block of a file) are not checked alone; whole files are.
        if (!/^pipelines:/m.test(block!)) continue;
        checked++;
        try {
          await loadConfigText(block!, {
            file: `${kind}/${entry.name}/README.md`,
            registry: builtinRegistry(),
            // What the examples take from the environment.
            env: { ALERT_WEBHOOK_URL: "https://hooks.example.com/alerts", WEBHOOK_TOKEN: "t0ken" },
          });
        } catch (error) {
          failures.push(error instanceof ConfigError ? error.message : String(error));
        }
      }
    }
  }
  assert.ok(checked >= 2, `${checked} examples checked`);
  assert.deepEqual(failures, []);
});

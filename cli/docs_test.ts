import assert from "node:assert/strict";
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

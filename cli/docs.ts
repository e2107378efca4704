/**
 * Keeps the config tables in the READMEs equal to the schemas:
 * `deno task docs` rewrites the text between `<!-- config:begin -->` and
 * `<!-- config:end -->` in each plugin's README (from its schema) and in the
 * configuration reference, docs/configuration.md (from the core schema). `docs_test.ts` fails when a
 * table is stale.
 *
 * @module
 */
import { BUILTIN_PLUGINS } from "./builtins.ts";
import { configSchema } from "../core/config/schema.ts";
import type { AnyPluginDefinition } from "../core/plugin.ts";
import { describeFields, fieldsTable, fieldTable } from "../core/plugin_docs.ts";

const BEGIN = "<!-- config:begin -->";
const END = "<!-- config:end -->";

/** Folder of a built-in plugin, relative to the repository root. */
export function pluginFolder(d: AnyPluginDefinition): string {
  return d.kind === "handler" ? `handlers/${d.name}` : `plugins/${d.name}`;
}

/** The core config table (docs/configuration.md). */
export function coreTable(): string {
  return fieldsTable(describeFields(configSchema), "Key");
}

/**
 * `text` with table rows normalized (cell padding and rule widths removed),
 * so a table compares equal before and after `deno fmt` aligns it.
 */
export function normalizeTables(text: string): string {
  return text.split("\n").map((line) => {
    if (!line.startsWith("|")) return line;
    return line.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/^:?-+:?$/, "-")).join("|");
  }).join("\n");
}

/** `text` with the marked region replaced by `table`, or `undefined` without markers. */
export function replaceRegion(text: string, table: string): string | undefined {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start) return undefined;
  return text.slice(0, start + BEGIN.length) + "\n\n" + table + "\n" + text.slice(end);
}

/** Every README and the table it must hold. */
export function expectedTables(root: string): Array<{ path: string; table: string }> {
  return [
    { path: `${root}/docs/configuration.md`, table: coreTable() },
    ...BUILTIN_PLUGINS.map((d) => ({
      path: `${root}/${pluginFolder(d)}/README.md`,
      table: fieldTable(d),
    })),
  ];
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  let failed = false;
  for (const { path, table } of expectedTables(root)) {
    const text = await Deno.readTextFile(path);
    const next = replaceRegion(text, table);
    if (next === undefined) {
      console.error(`${path}: no ${BEGIN} … ${END} region`);
      failed = true;
      continue;
    }
    if (normalizeTables(next) !== normalizeTables(text)) {
      await Deno.writeTextFile(path, next);
      console.log(`updated ${path}`);
    }
  }
  if (!failed) {
    // Align the tables as `deno fmt --check` wants them.
    await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--quiet", ...expectedTables(root).map((t) => t.path)],
    }).output();
  }
  Deno.exit(failed ? 1 : 0);
}

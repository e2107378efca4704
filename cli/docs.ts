/**
 * Keeps the config tables in the READMEs equal to the schemas:
 * `deno task docs` rewrites the text between `<!-- config:begin -->` and
 * `<!-- config:end -->` in each plugin's README (from its schema) and in the
 * configuration reference, docs/configuration.md (from the core schema), and the route table
 * of docs/admin-api.md between `<!-- routes:begin -->` and `<!-- routes:end -->` (from the
 * OpenAPI document the admin app generates). `docs_test.ts` fails when a table is stale.
 *
 * @module
 */
import { BUILTIN_PLUGINS, builtinRegistry } from "./builtins.ts";
import { configSchema } from "../core/config/schema.ts";
import type { AnyPluginDefinition } from "../core/plugin.ts";
import { describeFields, fieldsTable, fieldTable } from "../core/plugin_docs.ts";
import { createAdminApp } from "../core/admin/app.ts";
import { loadConfigText } from "../core/config/mod.ts";
import { createLogger } from "../core/log.ts";
import { Runtime } from "../core/runtime/runtime.ts";
import denoJson from "../deno.json" with { type: "json" };

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

/**
 * `text` with the region `<!-- <region>:begin -->` … `<!-- <region>:end -->`
 * replaced by `table`, or `undefined` without markers.
 */
export function replaceRegion(text: string, table: string, region = "config"): string | undefined {
  const begin = `<!-- ${region}:begin -->`;
  const start = text.indexOf(begin);
  const end = text.indexOf(`<!-- ${region}:end -->`);
  if (start < 0 || end < start) return undefined;
  return text.slice(0, start + begin.length) + "\n\n" + table + "\n" + text.slice(end);
}

/** The smallest process with every admin route: nothing is started or opened. */
const ROUTES_CONFIG = `
devices: { sensor: { type: simulated } }
brokers: { mem: { type: memory } }
handlers: { sink: { type: discard } }
pipelines: { main: { from: [sensor], via: mem, handlers: [sink] } }
`;

interface Operation {
  summary?: string;
  description?: string;
  "x-scope"?: string;
  responses?: Record<string, unknown>;
}

/** The OpenAPI document of the admin API, as `GET /openapi.json` serves it. */
export async function adminOpenApi(): Promise<Record<string, unknown>> {
  const registry = builtinRegistry();
  const loaded = await loadConfigText(ROUTES_CONFIG, { file: "<routes>", registry, env: {} });
  const runtime = await Runtime.create(loaded, { logger: createLogger({ level: "error" }) });
  try {
    const app = createAdminApp(runtime, {
      registry,
      redactedConfig: () => ({}),
      version: denoJson.version,
    });
    return await (await app.request("/openapi.json")).json();
  } finally {
    await runtime.stop();
  }
}

/** The route table of docs/admin-api.md: one row per operation of `doc`. */
export function routesTable(doc: Record<string, unknown>): string {
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  const rows = Object.entries(doc.paths as Record<string, Record<string, Operation>>).flatMap((
    [path, ops],
  ) =>
    Object.entries(ops).map(([method, op]) => {
      const what = [op.summary, op.description].filter(Boolean).join(". ");
      const answers = Object.keys(op.responses ?? {}).join(", ");
      return `| \`${method.toUpperCase()} ${path}\` | ${op["x-scope"] ?? "(none)"} | ${
        cell(what)
      } | ${answers} |`;
    })
  );
  return ["| Route | Scope | What | Answers |", "| - | - | - | - |", ...rows, ""].join("\n");
}

/** Every generated table, the file that holds it and its region. */
export async function expectedTables(
  root: string,
): Promise<Array<{ path: string; table: string; region?: string }>> {
  return [
    { path: `${root}/docs/configuration.md`, table: coreTable() },
    ...BUILTIN_PLUGINS.map((d) => ({
      path: `${root}/${pluginFolder(d)}/README.md`,
      table: fieldTable(d),
    })),
    {
      path: `${root}/docs/admin-api.md`,
      table: routesTable(await adminOpenApi()),
      region: "routes",
    },
  ];
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  let failed = false;
  const tables = await expectedTables(root);
  for (const { path, table, region = "config" } of tables) {
    const text = await Deno.readTextFile(path);
    const next = replaceRegion(text, table, region);
    if (next === undefined) {
      console.error(`${path}: no <!-- ${region}:begin --> … <!-- ${region}:end --> region`);
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
      args: ["fmt", "--quiet", ...tables.map((t) => t.path)],
    }).output();
  }
  Deno.exit(failed ? 1 : 0);
}

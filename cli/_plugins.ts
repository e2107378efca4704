/**
 * `telemetryhub plugins` and `telemetryhub schema`: what the registered
 * plugins take, and the JSON Schema of the configuration file.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { builtinRegistry } from "./builtins.ts";
import { configJsonSchema } from "../core/config/mod.ts";
import { describeFields } from "../core/plugin_docs.ts";
import { type CliIO, help, load } from "./_common.ts";
export async function pluginsCommand(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: "boolean" },
      config: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return help("plugins", io);
  let registry = builtinRegistry();
  if (values.config) registry = (await load(values.config, registry)).registry;
  const list = registry.list().map(({ definition: d, source }) => ({
    kind: d.kind,
    name: d.name,
    summary: d.summary,
    version: d.version,
    source,
    fields: describeFields(d.config),
  }));
  if (values.json) {
    io.out(JSON.stringify(list, null, 2));
    return 0;
  }
  for (const p of list) {
    io.out(`${p.kind} ${p.name}${p.version ? `@${p.version}` : ""} — ${p.summary}`);
    if (p.source !== "builtin") io.out(`  from ${p.source}`);
    if (p.fields.length === 0) io.out("  (no settings)");
    for (const f of p.fields) {
      const dflt = f.required
        ? " (required)"
        : f.default === undefined
        ? ""
        : ` = ${JSON.stringify(f.default)}`;
      io.out(`  ${f.path}: ${f.type}${dflt}`);
      if (f.description) io.out(`      ${f.description}`);
    }
    io.out("");
  }
  return 0;
}

export async function schemaCommand(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return help("schema", io);
  // With --config, the third-party plugins that file loads are in the schema too.
  const registry = values.config
    ? (await load(values.config, builtinRegistry())).registry
    : builtinRegistry();
  io.out(JSON.stringify(configJsonSchema(registry), null, 2));
  return 0;
}

/**
 * Documentation derived from plugin schemas: the field table shown by
 * `plugins` and written into each plugin's README. The schema is the single
 * source of truth; nothing here is written by hand.
 *
 * @module
 */
import { z } from "zod";
import type { AnyPluginDefinition } from "./plugin.ts";

/** One documented config field. */
export interface FieldDoc {
  /** Dotted path inside `config:`, `[]` for array items. */
  path: string;
  type: string;
  required: boolean;
  default?: unknown;
  description: string;
}

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
};

/** The JSON Schema (input side) of a zod schema. */
export function inputJsonSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
}

function isDuration(s: JsonSchema): boolean {
  if (s.pattern?.includes("ms|s|m|h|d")) return true;
  return (s.anyOf ?? s.oneOf ?? []).some(isDuration);
}

function typeOf(s: JsonSchema): string {
  // duration(): a string such as "5s" or a number of milliseconds
  if (isDuration(s)) return "duration";
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  const variants = s.anyOf ?? s.oneOf;
  if (variants) return [...new Set(variants.map(typeOf))].join(" | ");
  if (Array.isArray(s.type)) return s.type.join(" | ");
  if (s.type === "array") {
    const item = s.items ? typeOf(s.items) : "unknown";
    return item.includes(" ") ? `(${item})[]` : `${item}[]`;
  }
  if (s.type === "object" && s.additionalProperties && typeof s.additionalProperties === "object") {
    return `map of ${typeOf(s.additionalProperties)}`;
  }
  return s.type ?? "any";
}

/** Flattens a config schema into documented fields, nested objects included. */
export function describeFields(schema: z.ZodType): FieldDoc[] {
  const root = inputJsonSchema(schema) as JsonSchema;
  const out: FieldDoc[] = [];
  const descend = (child: JsonSchema, path: string) => {
    if (child.properties) walk(child, path);
    else if (child.type === "array" && child.items?.properties) walk(child.items, `${path}[]`);
    else if (
      child.additionalProperties && typeof child.additionalProperties === "object" &&
      child.additionalProperties.properties
    ) walk(child.additionalProperties, `${path}.<name>`);
    // A field that takes several forms documents the nested fields of each.
    for (const variant of child.anyOf ?? child.oneOf ?? []) descend(variant, path);
  };
  const walk = (node: JsonSchema, prefix: string) => {
    const required = new Set(node.required ?? []);
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const path = prefix ? `${prefix}.${key}` : key;
      const doc: FieldDoc = {
        path,
        type: typeOf(child),
        required: required.has(key) && child.default === undefined,
        description: child.description ?? "",
      };
      if (child.default !== undefined) doc.default = child.default;
      out.push(doc);
      descend(child, path);
    }
  };
  walk(root, "");
  return out;
}

/** A Markdown table of documented fields; `keyLabel` heads the first column. */
export function fieldsTable(fields: readonly FieldDoc[], keyLabel = "Field"): string {
  const esc = (s: string) => s.replaceAll("|", "\\|").replaceAll("\n", " ");
  const rows = fields.map((f) => {
    const dflt = f.required
      ? "**required**"
      : f.default === undefined
      ? ""
      : `\`${esc(JSON.stringify(f.default))}\``;
    return `| \`${f.path}\` | ${esc(f.type)} | ${dflt} | ${esc(f.description)} |`;
  });
  return [`| ${keyLabel} | Type | Default | Description |`, "|---|---|---|---|", ...rows].join(
    "\n",
  ) + "\n";
}

/** A Markdown table of a plugin's config fields. */
export function fieldTable(definition: AnyPluginDefinition): string {
  const fields = describeFields(definition.config);
  if (fields.length === 0) return "This plugin takes no settings (`config: {}`).\n";
  return fieldsTable(fields);
}

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

/**
 * The property whose value names each variant (`type: webhook`), when
 * every variant has one with a constant value.
 */
function discriminatorOf(variants: readonly JsonSchema[]): string | undefined {
  const first = variants[0]?.properties;
  if (!first || variants.length < 2) return undefined;
  return Object.keys(first).find((key) =>
    variants.every((v) => {
      const p = v.properties?.[key];
      return p !== undefined && (p.const !== undefined || p.enum?.length === 1);
    })
  );
}

/** Where a field appeared: unconditionally, or in one variant of a discriminated union. */
interface Appearance {
  doc: FieldDoc;
  variant?: { tag: string; value: string; all: readonly string[] } | undefined;
}

const unique = <T>(items: readonly T[]) => [...new Set(items)];

/** One row for a field seen in several variants: every type it takes, and which variants. */
function mergeAppearances(list: readonly Appearance[]): FieldDoc {
  const first = list[0]!.doc;
  const variants = list.every((a) => a.variant) ? list.map((a) => a.variant!) : [];
  const descriptions = unique(list.map((a) => a.doc.description).filter((d) => d !== ""));
  let description = descriptions[0] ?? "";
  // The discriminator itself: each variant explains its own value.
  if (variants.length > 1 && descriptions.length > 1) {
    description = list.map((a) => `${a.variant!.value}: ${a.doc.description}`).join("; ");
  }
  const values = unique(variants.map((v) => v.value));
  if (variants.length > 0 && values.length < variants[0]!.all.length) {
    description = `(with ${variants[0]!.tag}: ${values.join(" or ")}) ${description}`.trim();
  }
  const doc: FieldDoc = {
    path: first.path,
    type: unique(list.flatMap((a) => a.doc.type.split(" | "))).join(" | "),
    required: list.every((a) => a.doc.required),
    description,
  };
  if (first.default !== undefined) doc.default = first.default;
  return doc;
}

/**
 * Flattens a config schema into documented fields, nested objects, array
 * items and the variants of a union included. A field of some variants of
 * a discriminated union (`sinks[].url` of `type: webhook`) says so in its
 * description; a field several variants share is listed once.
 */
export function describeFields(schema: z.ZodType): FieldDoc[] {
  const root = inputJsonSchema(schema) as JsonSchema;
  const byPath = new Map<string, Appearance[]>();
  type Variant = Appearance["variant"];
  const descend = (child: JsonSchema, path: string, variant?: Variant) => {
    if (child.properties) walk(child, path, variant);
    else if (child.type === "array" && child.items) descend(child.items, `${path}[]`, variant);
    else if (
      child.additionalProperties && typeof child.additionalProperties === "object" &&
      child.additionalProperties.properties
    ) walk(child.additionalProperties, `${path}.<name>`, variant);
    // A field that takes several forms documents the nested fields of each.
    const variants = child.anyOf ?? child.oneOf ?? [];
    const tag = discriminatorOf(variants);
    const valueOf = (v: JsonSchema) => {
      const p = v.properties![tag!]!;
      return String(p.const ?? p.enum![0]);
    };
    const all = tag === undefined ? [] : variants.map(valueOf);
    for (const v of variants) {
      descend(v, path, tag === undefined ? variant : { tag, value: valueOf(v), all });
    }
  };
  const walk = (node: JsonSchema, prefix: string, variant?: Variant) => {
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
      const list = byPath.get(path);
      if (list) list.push({ doc, variant });
      else byPath.set(path, [{ doc, variant }]);
      descend(child, path, variant);
    }
  };
  walk(root, "");
  return [...byPath.values()].map(mergeAppearances);
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

/**
 * The JSON Schema (draft 2020-12) of `telemetry.yaml`, for editors and
 * linters: the core schema plus, for every component kind, one `if`/`then`
 * per registered plugin giving the schema of `config:` for that `type:`.
 * Generated from the zod schemas, descriptions included; never hand-written.
 *
 * @module
 */
import type { AnyPluginDefinition } from "../plugin.ts";
import type { PluginRegistry } from "../registry.ts";
import { z } from "../schema.ts";
import { COMPONENT_SECTIONS } from "./load.ts";
import { configSchema } from "./schema.ts";

/** A JSON Schema object. */
type JsonSchema = Record<string, unknown>;

const DIALECT = "https://json-schema.org/draft/2020-12/schema";

function toJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, {
    io: "input",
    unrepresentable: "any",
    target: "draft-2020-12",
  }) as JsonSchema;
}

/**
 * The JSON Schema of the whole `telemetry.yaml` for the plugins in
 * `registry` (built-ins, plus third-party ones when given the registry of a
 * loaded config).
 *
 * @example
 * ```ts
 * import { configJsonSchema } from "./json_schema.ts";
 * import { PluginRegistry } from "../registry.ts";
 * const schema = configJsonSchema(new PluginRegistry());
 * JSON.stringify(schema, null, 2); // write it to telemetry.schema.json
 * ```
 */
export function configJsonSchema(registry: PluginRegistry): object {
  const root = toJsonSchema(configSchema);
  const defs: Record<string, unknown> = {};
  const properties = root.properties as Record<string, JsonSchema>;
  for (const [section, kind] of Object.entries(COMPONENT_SECTIONS)) {
    const component = properties[section]?.additionalProperties as JsonSchema | undefined;
    const componentProperties = component?.properties as Record<string, JsonSchema> | undefined;
    if (!component || !componentProperties) continue;
    const names = registry.names(kind);
    if (names.length === 0) continue;
    componentProperties.type = { ...componentProperties.type, enum: names };
    component.allOf = names.map((name) => {
      const definition = registry.get(kind, name)!;
      return {
        if: { properties: { type: { const: name } }, required: ["type"] },
        then: {
          properties: { config: pluginConfigSchema(definition, `${kind}.${name}`, defs) },
        },
      };
    });
  }
  const { $schema: _dialect, ...rest } = root;
  acceptInterpolation(rest);
  for (const def of Object.values(defs)) acceptInterpolation(def as JsonSchema);
  return {
    $schema: DIALECT,
    title: "telemetry.yaml",
    description:
      "TelemetryHub configuration: devices, brokers, handlers and the pipelines wiring them",
    ...rest,
    ...(Object.keys(defs).length > 0
      ? { $defs: { ...(rest.$defs as JsonSchema | undefined), ...defs } }
      : {}),
  };
}

/**
 * One plugin's config schema, ready to nest: its own `$defs` are hoisted to
 * the root under `prefix` so that `#/$defs/...` references still resolve.
 */
function pluginConfigSchema(
  definition: AnyPluginDefinition,
  prefix: string,
  defs: Record<string, unknown>,
): JsonSchema {
  const { $schema: _dialect, $defs, ...schema } = toJsonSchema(definition.config);
  let recursive = false;
  const rename = (ref: string) => {
    if (ref === "#") {
      recursive = true;
      return `#/$defs/${prefix}`;
    }
    return ref.startsWith("#/$defs/") ? `#/$defs/${prefix}.${ref.slice(8)}` : ref;
  };
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rewrite);
    if (value === null || typeof value !== "object") return value;
    return Object.fromEntries(
      Object.entries(value).map((
        [k, v],
      ) => [k, k === "$ref" && typeof v === "string" ? rename(v) : rewrite(v)]),
    );
  };
  for (const [name, def] of Object.entries(($defs as JsonSchema | undefined) ?? {})) {
    defs[`${prefix}.${name}`] = rewrite(def);
  }
  const nested = rewrite(schema) as JsonSchema;
  // A recursive plugin schema refers to its own root ("#"): keep that root in $defs.
  if (recursive) {
    defs[prefix] = nested;
    return { $ref: `#/$defs/${prefix}` };
  }
  return {
    title: `${definition.name} ${definition.kind} config`,
    ...(nested.description === undefined ? { description: definition.summary } : {}),
    ...nested,
  };
}

/** A string holding `${VAR}`, `${VAR:-default}` or `${VAR:?message}`: replaced when loading. */
const INTERPOLATED: JsonSchema = {
  type: "string",
  pattern: "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:[-?][^}]*)?\\}",
};

/** Keywords whose values are schemas (or lists or maps of schemas) to walk into. */
const SUBSCHEMA_MAPS = ["properties", "$defs", "patternProperties"];
const SUBSCHEMAS = ["additionalProperties", "items", "then", "else", "not", "contains"];
const SUBSCHEMA_LISTS = ["anyOf", "oneOf", "allOf", "prefixItems"];

/**
 * Lets every scalar of the schema also be an interpolated string, in place:
 * `validate` accepts `role: ${TELEMETRY_ROLE:-all}` or `port: ${PORT}`, so the
 * schema must too. A leaf (a schema with a type other than object or array,
 * an `enum` or a `const`) becomes `anyOf: [leaf, interpolated string]`; its
 * description stays on the outside, where editors show it.
 */
function acceptInterpolation(node: JsonSchema): void {
  for (const key of SUBSCHEMA_MAPS) {
    const map = node[key] as Record<string, JsonSchema> | undefined;
    if (!map || typeof map !== "object") continue;
    for (const [name, child] of Object.entries(map)) map[name] = withInterpolation(child);
  }
  for (const key of SUBSCHEMAS) {
    const child = node[key];
    if (child && typeof child === "object" && !Array.isArray(child)) {
      node[key] = withInterpolation(child as JsonSchema);
    }
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = node[key];
    if (Array.isArray(list)) node[key] = list.map((c) => withInterpolation(c as JsonSchema));
  }
}

function withInterpolation(node: JsonSchema): JsonSchema {
  if (typeof node !== "object" || node === null) return node;
  const type = node.type;
  const container = type === "object" || type === "array" ||
    (Array.isArray(type) && (type.includes("object") || type.includes("array")));
  const leaf = !container && (type !== undefined || "enum" in node || "const" in node) &&
    !("$ref" in node);
  if (!leaf) {
    acceptInterpolation(node);
    return node;
  }
  // A discriminator (`type: sqlite`) is matched by `const` in an `if`: leave those alone.
  if ("const" in node && Object.keys(node).length === 1) return node;
  const { description, title, default: dflt, ...rest } = node;
  return {
    ...(title === undefined ? {} : { title }),
    ...(description === undefined ? {} : { description }),
    ...(dflt === undefined ? {} : { default: dflt }),
    anyOf: [rest, INTERPOLATED],
  };
}

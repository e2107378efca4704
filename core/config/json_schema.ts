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

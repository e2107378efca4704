/**
 * The configuration loader: `telemetry.yaml` → a validated, resolved
 * configuration, or a {@link ConfigError} listing every problem with its
 * line and column.
 *
 * @example
 * ```ts
 * import { loadConfigText } from "./mod.ts";
 * import { defineBroker, z } from "../mod.ts";
 * import { PluginRegistry } from "../registry.ts";
 * const shared = defineBroker({
 *   name: "shared",
 *   summary: "A broker several processes can share",
 *   config: z.strictObject({}),
 *   shared: true,
 *   create: () => Promise.reject(new Error("Not started by the loader")),
 * });
 * const text = "role: hub\nbrokers: { fleet: { type: shared } }\npipelines: { main: { via: fleet } }\n";
 * const { config, warnings } = await loadConfigText(text, {
 *   file: "<input>",
 *   env: {},
 *   registry: PluginRegistry.of([shared]),
 * });
 * config.role; // "hub"
 * warnings; // []
 * ```
 *
 * @module
 */
export {
  COMPONENT_SECTIONS,
  formatPath,
  loadConfigFile,
  loadConfigText,
  type LoadedConfig,
  type LoadOptions,
  type PathSegment,
} from "./load.ts";
export {
  coerceScalar,
  type Env,
  interpolate,
  type Interpolated,
  isSecretKey,
  isSecretVariable,
  redact,
  urlPasswords,
} from "./interpolate.ts";
export { closest, didYouMean, editDistance, quoteList, unknownKeyMessage } from "./suggest.ts";
export { configJsonSchema } from "./json_schema.ts";
export {
  brokerSchema,
  type ComponentConfig,
  configSchema,
  type CoreConfig,
  type DeviceConfig,
  deviceSchema,
  handlerSchema,
  OVERFLOW_POLICIES,
  type PipelineConfig,
  pipelineSchema,
  type ResolvedConfig,
  retrySchema,
  type Role,
  ROLES,
} from "./schema.ts";

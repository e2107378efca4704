/**
 * The configuration loader: `telemetry.yaml` → a validated, resolved
 * configuration, or a {@link ConfigError} listing every problem with its
 * line and column.
 *
 * @example
 * ```ts
 * import { loadConfigText } from "./mod.ts";
 * import { builtinRegistry } from "../builtins.ts";
 * const text = "role: hub\nbrokers: { fleet: { type: redis } }\npipelines: { main: { via: fleet } }\n";
 * const { config, warnings } = await loadConfigText(text, {
 *   file: "<input>",
 *   env: {},
 *   registry: builtinRegistry(),
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

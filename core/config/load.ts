/**
 * Loads `telemetry.yaml`: YAML with positions, environment interpolation,
 * third-party plugins, the core schema, each plugin's config schema and the
 * references between components. Every problem is collected and reported at
 * once, each as `file:line:col path: message`.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { isAlias, isMap, isScalar, LineCounter, parseDocument } from "yaml";
import { ConfigError, type ConfigProblem, errorMessage, PluginError } from "../errors.ts";
import { importPlugin, type PluginRegistry, resolvePluginSpecifier } from "../registry.ts";
import type { z } from "../schema.ts";
import { type Env, interpolate, isSecretKey, redact, urlPasswords } from "./interpolate.ts";
import { configSchema, type CoreConfig, type ResolvedConfig, type Role } from "./schema.ts";
import { isRecord } from "../sample.ts";
import { describeNode, issueProblems, PARSE_OPTIONS } from "./_issues.ts";
import { formatPath, type PathSegment } from "./_path.ts";
import { Reporter, syntaxErrorOffset, walkScalars, yamlMessage } from "./_positions.ts";
import {
  checkReferences,
  checkRunnable,
  COMPONENT_SECTIONS,
  entriesOf,
  type Section,
  SECTIONS,
  unknownTypeMessage,
} from "./_references.ts";

export { COMPONENT_SECTIONS, formatPath, type PathSegment };

/** Options of {@link loadConfigText}. */
export interface LoadOptions {
  /** Path shown in messages, used as given (`telemetry.yaml`); `<input>` for posted text. */
  file: string;
  /** Environment for `${VAR}` references; default `Deno.env.toObject()`. */
  env?: Env;
  /** Built-in plugins; a clone of it gets the modules listed under `plugins:`. */
  registry: PluginRegistry;
  /** Directory that relative `plugins:` entries resolve against; default `dirname(file)`. */
  baseDir?: string;
  /**
   * Import the modules listed under `plugins:` (default true). When false,
   * nothing is imported: each listed module must be one `registry` already
   * holds (the process's loaded plugins), else it is a problem; so a posted
   * configuration can never make the process load or run code.
   */
  loadPlugins?: boolean;
  /**
   * The role the process will take when it overrides the file's `role:`
   * (`--role`, `TELEMETRY_ROLE`); the brokers are checked against it.
   */
  role?: Role;
}

/** A configuration ready to run. */
export interface LoadedConfig {
  /** Core defaults applied; each component's `config` is its plugin schema's output. */
  config: ResolvedConfig;
  /** The registry including third-party plugins listed under `plugins:`. */
  registry: PluginRegistry;
  /** Secret values found, for scrubbing logs. */
  secrets: Set<string>;
  /** The effective config as plain JSON with every secret replaced by `"***"`. */
  redacted: unknown;
  /** Non-fatal problems (a device no pipeline reads, YAML warnings). */
  warnings: ConfigProblem[];
}

/**
 * Reads and loads a configuration file. An unreadable file gives a
 * {@link ConfigError} with one problem at 0:0.
 *
 * @example
 * ```ts
 * import { loadConfigFile } from "./load.ts";
 * import { ConfigError, formatProblem } from "../errors.ts";
 * import { PluginRegistry } from "../registry.ts";
 * try {
 *   const { config } = await loadConfigFile("telemetry.yaml", { registry: new PluginRegistry() });
 *   console.log(Object.keys(config.pipelines));
 * } catch (error) {
 *   if (!(error instanceof ConfigError)) throw error;
 *   for (const problem of error.problems) console.error(formatProblem(problem));
 * }
 * ```
 */
export async function loadConfigFile(
  path: string,
  options: Omit<LoadOptions, "file"> & { file?: string },
): Promise<LoadedConfig> {
  const file = options.file ?? path;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : error instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : errorMessage(error).split("\n")[0];
    throw new ConfigError([{
      file,
      line: 0,
      col: 0,
      path: "",
      message: `Cannot read configuration file ${JSON.stringify(path)}: ${reason}`,
    }], { cause: error });
  }
  return await load(text, { ...options, file, baseDir: options.baseDir ?? dirname(path) }, path);
}

/**
 * Loads configuration text. Throws {@link ConfigError} carrying every
 * problem found, sorted by position.
 *
 * @example
 * ```ts
 * import { loadConfigText } from "./load.ts";
 * import { ConfigError } from "../errors.ts";
 * import { PluginRegistry } from "../registry.ts";
 * const text = "pipelines:\n  main:\n    via: queue\n";
 * try {
 *   await loadConfigText(text, { file: "<input>", env: {}, registry: new PluginRegistry() });
 * } catch (error) {
 *   if (!(error instanceof ConfigError)) throw error;
 *   error.message;
 *   // <input>:3:10 pipelines.main.via: Broker "queue" is not defined; no brokers are defined
 * }
 * ```
 */
export async function loadConfigText(text: string, options: LoadOptions): Promise<LoadedConfig> {
  return await load(text, options, options.file);
}

// ---------------------------------------------------------------- the pipeline of checks

async function load(text: string, options: LoadOptions, realPath: string): Promise<LoadedConfig> {
  const {
    file,
    env = Deno.env.toObject(),
    registry: builtins,
    baseDir = dirname(realPath),
    loadPlugins = true,
    role,
  } = options;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true });
  const report = new Reporter(file, doc, lineCounter);

  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      report.at(syntaxErrorOffset(text, error), [], yamlMessage(error.message));
    }
    throw report.error();
  }
  for (const warning of doc.warnings) {
    report.warnAt(warning.pos[0], [], yamlMessage(warning.message));
  }

  const root = doc.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ""))) {
    report.add(
      [],
      "Configuration is empty; expected a mapping with devices, brokers, handlers and pipelines",
    );
    throw report.error();
  }
  if (!isMap(root)) {
    report.add([], `Expected a mapping at the top level, got ${describeNode(root)}`);
    throw report.error();
  }

  // Environment interpolation, in place, so positions stay with the nodes.
  const secrets = new Set<string>();
  const failed: PathSegment[][] = [];
  // Problems never show a value taken from the environment: they say which variable.
  const fromEnv = new Map<string, { source: string; value: unknown }>();
  const envValues = new Map<string, string>();
  walkScalars(root, [], (node, path) => {
    if (isAlias(node)) {
      if (!node.resolve(doc)) {
        report.add(
          path,
          `Unknown alias "*${node.source}"; define the anchor "&${node.source}" before it`,
        );
      }
      return;
    }
    if (typeof node.value !== "string") return;
    const result = interpolate(node.value, env, { plain: node.type === "PLAIN" });
    for (const secret of result.secrets) secrets.add(secret);
    if (result.substituted?.length) {
      fromEnv.set(JSON.stringify(path), { source: node.value, value: result.value });
      for (const { name, value } of result.substituted) envValues.set(value, name);
    }
    if (result.problems.length > 0) {
      failed.push(path);
      for (const message of result.problems) report.add(path, message);
    }
    node.value = result.value;
  });
  if (fromEnv.size > 0) report.hideEnvironment(fromEnv, envValues);
  let data: Record<string, unknown>;
  try {
    data = doc.toJS({ maxAliasCount: 1000 }) as Record<string, unknown>;
  } catch (error) {
    // Only an alias problem can get here (unknown anchor, alias bomb).
    if (report.problems.length === 0) report.add([], yamlMessage(errorMessage(error)));
    throw report.error();
  }
  const isFailed = (path: readonly PathSegment[]) =>
    failed.some((f) => f.length <= path.length && f.every((s, i) => s === path[i]));

  // Third-party plugins, before component types are looked up.
  const registry = builtins.clone();
  const pluginList = Array.isArray(data.plugins) ? data.plugins : [];
  if (loadPlugins) {
    const entries = pluginList.map((spec, i) => ({ spec, i }))
      .filter((e): e is { spec: string; i: number } =>
        typeof e.spec === "string" && e.spec !== "" && !isFailed(["plugins", e.i])
      );
    const imported = await Promise.allSettled(
      entries.map((e) => importPlugin(e.spec, baseDir)),
    );
    entries.forEach(({ spec, i }, n) => {
      const outcome = imported[n]!;
      try {
        if (outcome.status === "rejected") throw outcome.reason;
        registry.register(outcome.value, spec);
      } catch (error) {
        const message = error instanceof PluginError
          ? error.message
          : `Cannot load plugin module ${JSON.stringify(spec)}: ${errorMessage(error)}`;
        report.add(["plugins", i], message.split("\n")[0]!.replace(/\.$/, ""));
      }
    });
  } else {
    const loaded = builtins.list().filter((p) => p.source !== "builtin").map((p) => p.source);
    const same = (a: string, b: string) => {
      if (a === b) return true;
      try {
        return resolvePluginSpecifier(a, baseDir) === resolvePluginSpecifier(b, baseDir);
      } catch {
        return false;
      }
    };
    pluginList.forEach((spec, i) => {
      if (typeof spec !== "string" || spec === "" || isFailed(["plugins", i])) return;
      if (loaded.some((source) => same(spec, source))) return;
      report.add(
        ["plugins", i],
        `Plugin module ${JSON.stringify(spec)} is not loaded in this process; only modules ` +
          "the running configuration lists can be checked here (deno task validate imports it)",
      );
    });
  }

  // The core schema.
  const core = configSchema.safeParse(data, PARSE_OPTIONS);
  const coreProblemPaths = new Set<string>();
  if (!core.success) {
    for (const p of issueProblems(core.error.issues, [])) {
      // A value whose interpolation failed has been reported already; its key has not.
      if (p.target === "value" && isFailed(p.path)) continue;
      coreProblemPaths.add(JSON.stringify(p.path));
      report.add(p.path, p.message, p.target);
    }
  }

  // Each component's config, by its plugin's schema.
  const pluginConfigs = new Map<string, unknown>();
  for (const section of SECTIONS) {
    const kind = COMPONENT_SECTIONS[section];
    for (const [name, entry] of entriesOf(data[section])) {
      if (!isRecord(entry)) continue;
      const type = entry.type;
      const typePath = [section, name, "type"];
      if (typeof type !== "string" || type === "" || isFailed(typePath)) continue;
      const definition = registry.get(kind, type);
      if (!definition) {
        report.add(typePath, unknownTypeMessage(kind, type, registry));
        continue;
      }
      const configPath = [section, name, "config"];
      const raw = entry.config === undefined ? {} : entry.config;
      if (!isRecord(raw)) continue;
      let result: z.ZodSafeParseResult<unknown>;
      try {
        result = await definition.config.safeParseAsync(raw, PARSE_OPTIONS);
      } catch (error) {
        report.add(
          configPath,
          `The ${kind} plugin ${JSON.stringify(type)} failed to check its config: ${
            errorMessage(error)
          }`,
        );
        continue;
      }
      if (result.success) {
        pluginConfigs.set(JSON.stringify(configPath), result.data);
        continue;
      }
      for (const p of issueProblems(result.error.issues, configPath)) {
        if (p.target === "key" || !isFailed(p.path)) report.add(p.path, p.message, p.target);
      }
    }
  }

  const skip = (path: PathSegment[]) =>
    isFailed(path) || coreProblemPaths.has(JSON.stringify(path));
  checkReferences(data, report, skip);
  checkRunnable(data, report, skip, {
    registry,
    role: role ?? (core.success ? core.data.role : undefined),
    admin: core.success ? core.data.admin : undefined,
  });

  if (report.problems.length > 0 || !core.success) throw report.error();

  const config = resolveConfig(
    core.data,
    pluginConfigs,
    file === "<input>" ? file : resolve(realPath),
  );
  collectSecrets(data, secrets);
  collectSecrets(config, secrets);
  return {
    config,
    registry,
    secrets,
    redacted: redact(config, secrets),
    warnings: report.sortedWarnings(),
  };
}

function resolveConfig(
  core: CoreConfig,
  pluginConfigs: Map<string, unknown>,
  file: string,
): ResolvedConfig {
  const config: ResolvedConfig = { ...core, file };
  for (const section of SECTIONS) {
    const resolved: Record<string, CoreConfig[Section][string]> = {};
    for (const [name, component] of Object.entries(core[section])) {
      const parsed = pluginConfigs.get(JSON.stringify([section, name, "config"]));
      // A plugin whose type is unknown (loadPlugins: false) keeps its raw config.
      resolved[name] = parsed === undefined
        ? component
        : { ...component, config: parsed as Record<string, unknown> };
    }
    config[section] = resolved;
  }
  return config;
}

/** Adds values of secret-looking keys and passwords inside URLs to `secrets`. */
function collectSecrets(value: unknown, secrets: Set<string>, secretKey = false): void {
  if (typeof value === "string") {
    if (value === "") return;
    if (secretKey) secrets.add(value);
    for (const password of urlPasswords(value)) secrets.add(password);
  } else if (Array.isArray(value)) {
    for (const item of value) collectSecrets(item, secrets, secretKey);
  } else if (isRecord(value)) {
    for (const [key, item] of Object.entries(value)) {
      collectSecrets(item, secrets, isSecretKey(key));
    }
  }
}

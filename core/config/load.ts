/**
 * Loads `telemetry.yaml`: YAML with positions, environment interpolation,
 * third-party plugins, the core schema, each plugin's config schema and the
 * references between components. Every problem is collected and reported at
 * once, each as `file:line:col path: message`.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  type Scalar,
  type YAMLError,
} from "yaml";
import { ConfigError, type ConfigProblem, errorMessage, PluginError } from "../errors.ts";
import type { PluginKind } from "../plugin.ts";
import { importPlugin, type PluginRegistry, resolvePluginSpecifier } from "../registry.ts";
import type { z } from "../schema.ts";
import {
  type Env,
  interpolate,
  isSecretKey,
  isSecretVariable,
  redact,
  urlPasswords,
} from "./interpolate.ts";
import { type AdminConfig, exposureProblem, scopedTokens } from "./admin.ts";
import { configSchema, type CoreConfig, type ResolvedConfig, type Role } from "./schema.ts";
import { didYouMean, quoteList, unknownKeyMessage } from "./suggest.ts";

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

/** Sections of `telemetry.yaml` holding components, with the plugin kind of each. */
export const COMPONENT_SECTIONS = {
  devices: "device",
  brokers: "broker",
  handlers: "handler",
} as const satisfies Record<string, PluginKind>;

type Section = keyof typeof COMPONENT_SECTIONS;
const SECTIONS = Object.keys(COMPONENT_SECTIONS) as Section[];

/** A segment of a path in the document: a mapping key or a list index. */
export type PathSegment = string | number;

/**
 * Formats a path: dotted keys, `[i]` for list items, `["a.b"]` for keys
 * that are not plain names.
 *
 * @example
 * ```ts
 * import { formatPath } from "./load.ts";
 * formatPath(["pipelines", "main", "from", 1]); // "pipelines.main.from[1]"
 * ```
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
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

// ---------------------------------------------------------------- references

function checkReferences(
  data: Record<string, unknown>,
  report: Reporter,
  skip: (path: PathSegment[]) => boolean,
): void {
  const defined = {
    devices: new Set(entriesOf(data.devices).map(([name]) => name)),
    brokers: new Set(entriesOf(data.brokers).map(([name]) => name)),
    handlers: new Set(entriesOf(data.handlers).map(([name]) => name)),
  };
  const feeds = new Map<string, string>();
  const check = (section: Section, value: unknown, path: PathSegment[]): boolean => {
    if (typeof value !== "string" || skip(path)) return false;
    if (defined[section].has(value)) return true;
    const noun = COMPONENT_SECTIONS[section];
    const names = [...defined[section]].sort();
    const hint = didYouMean(value, names) ||
      (names.length === 0
        ? `; no ${section} are defined`
        : names.length <= 10
        ? `; defined ${section}: ${quoteList(names)}`
        : "");
    report.add(path, `${capitalize(noun)} ${JSON.stringify(value)} is not defined${hint}`);
    return false;
  };

  for (const [pipeline, p] of entriesOf(data.pipelines)) {
    if (!isRecord(p)) continue;
    const base = ["pipelines", pipeline];
    if (Array.isArray(p.from)) {
      p.from.forEach((device, i) => {
        const path = [...base, "from", i];
        if (!check("devices", device, path)) return;
        const name = device as string;
        const first = feeds.get(name);
        if (first === undefined) feeds.set(name, pipeline);
        else if (first === pipeline) {
          report.add(path, `Device ${JSON.stringify(name)} is listed more than once`);
        } else {
          report.add(
            path,
            `Device ${JSON.stringify(name)} already feeds pipeline ${JSON.stringify(first)}; ` +
              "a device feeds at most one pipeline",
          );
        }
      });
    }
    check("brokers", p.via, [...base, "via"]);
    if (Array.isArray(p.handlers)) {
      p.handlers.forEach((h, i) => check("handlers", h, [...base, "handlers", i]));
    }
    for (const [taskType, chain] of entriesOf(p.routes)) {
      if (!Array.isArray(chain)) continue;
      chain.forEach((h, i) => check("handlers", h, [...base, "routes", taskType, i]));
    }
  }
  if (Array.isArray(data.tests)) {
    const pipelines = entriesOf(data.pipelines).map(([name]) => name);
    data.tests.forEach((t, i) => {
      if (!isRecord(t)) return;
      if (Array.isArray(t.handlers)) {
        t.handlers.forEach((h, j) => check("handlers", h, ["tests", i, "handlers", j]));
      }
      const path = ["tests", i, "pipeline"];
      if (typeof t.pipeline === "string" && !pipelines.includes(t.pipeline) && !skip(path)) {
        report.add(
          path,
          `Pipeline ${JSON.stringify(t.pipeline)} is not defined${
            didYouMean(t.pipeline, pipelines) || `; defined pipelines: ${quoteList(pipelines)}`
          }`,
        );
      }
    });
  }

  for (const device of defined.devices) {
    if (!feeds.has(device)) {
      report.warn(
        ["devices", device],
        `Device ${JSON.stringify(device)} is not used by any pipeline`,
        "key",
      );
    }
  }
}

// ---------------------------------------------------------------- what `run` needs

/**
 * What `run` would refuse in a file that is otherwise valid: nothing to run,
 * an admin API reachable beyond loopback without a token, and split roles on
 * a broker whose plugin declares it cannot be shared.
 */
function checkRunnable(
  data: Record<string, unknown>,
  report: Reporter,
  skip: (path: PathSegment[]) => boolean,
  { registry, role, admin }: {
    registry: PluginRegistry;
    role: Role | undefined;
    admin: AdminConfig | undefined;
  },
): void {
  const exposed = admin ? exposureProblem(admin) : undefined;
  if (exposed && !skip(["admin", "listen"])) report.add(["admin", "listen"], exposed);
  if (
    admin?.enabled && admin.metrics_auth &&
    !scopedTokens(admin).some((t) => t.scopes.has("metrics"))
  ) {
    report.add(
      ["admin", "metrics_auth"],
      "admin.metrics_auth needs a token that may read metrics; set admin.token or give a " +
        'token of admin.tokens the scope "metrics" or "read"',
    );
  }
  const pipelines = entriesOf(data.pipelines);
  if (pipelines.length === 0 && !skip(["pipelines"])) {
    report.add(
      ["pipelines"],
      "Nothing to run: the configuration defines no pipelines; " +
        "add one that reads devices through a broker",
    );
  }
  if (role === undefined || role === "all") return;
  const brokers = entriesOf(data.brokers);
  const reported = new Set<string>();
  for (const [, p] of pipelines) {
    if (!isRecord(p) || typeof p.via !== "string" || reported.has(p.via)) continue;
    const block = brokers.find(([name]) => name === p.via)?.[1];
    if (!isRecord(block) || typeof block.type !== "string") continue;
    const typePath = ["brokers", p.via, "type"];
    if (skip(typePath) || registry.get("broker", block.type)?.shared !== false) continue;
    reported.add(p.via);
    report.add(
      typePath,
      `Role ${JSON.stringify(role)} cannot use broker ${JSON.stringify(p.via)} (type ` +
        `${JSON.stringify(block.type)}): it lives inside one process, so a separate hub and ` +
        "processor would never see each other's tasks. Split roles need a shared broker such " +
        'as Redis; use role "all" with this one',
    );
  }
}

function unknownTypeMessage(kind: PluginKind, type: string, registry: PluginRegistry): string {
  const names = registry.names(kind);
  const head = `Unknown ${kind} type ${JSON.stringify(type)}`;
  if (names.length === 0) return `${head}; no ${kind} plugins are registered`;
  const hint = didYouMean(type, names);
  return hint
    ? `${head}${hint} Known ${kind} types: ${quoteList(names)}`
    : `${head}; known ${kind} types: ${quoteList(names)}`;
}

// ---------------------------------------------------------------- zod issues → problems

interface PathProblem {
  path: PathSegment[];
  message: string;
  target: "key" | "value";
}

/** Marks the message of an `unrecognized_keys` issue that carries the valid keys. */
const VALID_KEYS = "\u0000valid-keys:";

const PARSE_OPTIONS = { reportInput: true, error: issueMessage } as const;

/**
 * Rewrites zod's default messages: sentence case, values quoted, what was
 * expected and what was found. Schema-level messages take precedence.
 */
function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  const got = `, got ${describe(issue.input)}`;
  switch (issue.code) {
    case "invalid_type": {
      if (issue.input === undefined) return "Missing required key";
      return `Expected ${typeName(issue.expected, issue.inst)}${got}`;
    }
    case "invalid_value": {
      const values = issue.values;
      const hint = typeof issue.input === "string" && values.every((v) => typeof v === "string")
        ? didYouMean(issue.input, values as string[])
        : "";
      return values.length === 1
        ? `Expected ${literal(values[0])}${got}`
        : `Expected one of ${values.map(literal).join(", ")}${got}${hint}`;
    }
    case "invalid_union": {
      const branches = issue.errors.map((branch) => branch[0]);
      if (
        branches.length > 0 &&
        branches.every((b) => b?.code === "invalid_type" && b.path.length === 0)
      ) {
        const names = branches.map((b) => typeName((b as { expected: string }).expected));
        return `Expected ${[...new Set(names)].join(" or ")}${got}`;
      }
      return `Invalid value${got.replace(", got", "")}`;
    }
    case "too_small":
    case "too_big": {
      const small = issue.code === "too_small";
      const limit = small ? issue.minimum : issue.maximum;
      const inclusive = issue.inclusive !== false;
      if (issue.origin === "string") {
        if (small && Number(limit) === 1) return "Must not be empty";
        return `Must be ${small ? "at least" : "at most"} ${limit} characters long${got}`;
      }
      if (issue.origin === "array" || issue.origin === "set") {
        return `Must have ${small ? "at least" : "at most"} ${limit} item${
          Number(limit) === 1 ? "" : "s"
        }, got ${Array.isArray(issue.input) ? issue.input.length : "more"}`;
      }
      const bound = small
        ? (inclusive ? "at least" : "greater than")
        : (inclusive ? "at most" : "less than");
      return `Must be ${bound} ${limit}${got}`;
    }
    case "not_multiple_of":
      return `Must be a multiple of ${issue.divisor}${got}`;
    case "invalid_format":
      return issue.format === "regex"
        ? `Must match the pattern ${issue.pattern}${got}`
        : `Expected a valid ${issue.format}${got}`;
    case "unrecognized_keys": {
      const shape = (issue.inst as { _zod?: { def?: { shape?: object } } } | undefined)?._zod
        ?.def?.shape;
      return VALID_KEYS + JSON.stringify(shape ? Object.keys(shape) : []);
    }
    default:
      return undefined;
  }
}

function issueProblems(issues: readonly z.core.$ZodIssue[], base: PathSegment[]): PathProblem[] {
  const problems: PathProblem[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path.map((s) => typeof s === "number" ? s : String(s))];
    switch (issue.code) {
      case "unrecognized_keys": {
        const valid = issue.message.startsWith(VALID_KEYS)
          ? JSON.parse(issue.message.slice(VALID_KEYS.length)) as string[]
          : [];
        for (const key of issue.keys) {
          problems.push({
            path: [...path, key],
            message: unknownKeyMessage(key, valid),
            target: "key",
          });
        }
        break;
      }
      case "invalid_key": {
        const name = path.at(-1);
        const reason = issue.issues[0]?.message ?? "invalid name";
        problems.push({
          path,
          message: `Invalid name ${JSON.stringify(String(name))}: ${lowerFirst(reason)}`,
          target: "key",
        });
        break;
      }
      case "invalid_type":
        if ((issue as { input?: unknown }).input === undefined && path.length > 0) {
          const key = path.at(-1)!;
          problems.push({
            path: path.slice(0, -1),
            message: `Missing required key ${JSON.stringify(String(key))}`,
            target: "key",
          });
          break;
        }
        problems.push({ path, message: issue.message, target: "value" });
        break;
      default: {
        let message = issue.message;
        const input = (issue as { input?: unknown }).input;
        // Schema-level messages ("Expected a duration such as ...") gain the value found.
        if (
          /^Expected\b/.test(message) && !/, got /.test(message) &&
          ["string", "number", "boolean"].includes(typeof input)
        ) {
          message += `, got ${describe(input)}`;
        }
        problems.push({ path, message, target: "value" });
      }
    }
  }
  return problems;
}

function typeName(expected: string, inst?: unknown): string {
  const format = (inst as { _zod?: { def?: { format?: string } } } | undefined)?._zod?.def
    ?.format;
  if (expected === "number" && format && /int/.test(format)) return "an integer";
  switch (expected) {
    case "string":
      return "a string";
    case "number":
      return "a number";
    case "int":
      return "an integer";
    case "boolean":
      return "true or false";
    case "array":
    case "tuple":
      return "a list";
    case "object":
    case "record":
    case "map":
      return "a mapping";
    case "null":
      return "an empty value";
    default:
      return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
  }
}

/** How a found value reads in a message. */
function describe(value: unknown): string {
  if (value === null) return "an empty value";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  return String(value);
}

function literal(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

function describeNode(node: Node): string {
  if (isSeq(node)) return "a list";
  if (isScalar(node)) return `the value ${describe(node.value)}`;
  return "something else";
}

// ---------------------------------------------------------------- positions

/**
 * Environment values shorter than this are only hidden where they are the
 * value in question, unless their variable's name looks secret: a short
 * common word (`processor`, `info`) would otherwise vanish from messages.
 */
const MIN_HIDDEN_ENV_VALUE = 12;

/** Collects problems with positions looked up in the YAML document. */
class Reporter {
  readonly problems: ConfigProblem[] = [];
  readonly #warnings: ConfigProblem[] = [];
  readonly #file: string;
  readonly #doc: Document;
  readonly #lines: LineCounter;
  #fromEnv = new Map<string, { source: string; value: unknown }>();
  #envValues: [string, string][] = [];

  constructor(file: string, doc: Document, lines: LineCounter) {
    this.#file = file;
    this.#doc = doc;
    this.#lines = lines;
  }

  /** A problem at `path`: at its value, or its key; at the nearest ancestor if missing. */
  add(path: readonly PathSegment[], message: string, target: "key" | "value" = "value"): void {
    this.problems.push(this.#problem(this.#offset(path, target), path, message));
  }

  /** A problem at a character offset (YAML syntax errors). */
  at(offset: number, path: readonly PathSegment[], message: string): void {
    this.problems.push(this.#problem(offset, path, message));
  }

  warn(path: readonly PathSegment[], message: string, target: "key" | "value" = "value"): void {
    this.#warnings.push(this.#problem(this.#offset(path, target), path, message));
  }

  warnAt(offset: number, path: readonly PathSegment[], message: string): void {
    this.#warnings.push(this.#problem(offset, path, message));
  }

  /**
   * From now on, a message about a value that came from the environment
   * quotes the reference (`"\${DATABASE_URL}"`) instead of the value, and
   * environment values elsewhere in a message are replaced by their
   * variable's reference.
   */
  hideEnvironment(
    fromEnv: Map<string, { source: string; value: unknown }>,
    envValues: Map<string, string>,
  ): void {
    this.#fromEnv = fromEnv;
    this.#envValues = [...envValues].filter(([value, name]) =>
      value.length >= (isSecretVariable(name) ? 3 : MIN_HIDDEN_ENV_VALUE)
    )
      .sort((a, b) => b[0].length - a[0].length);
  }

  #hide(path: readonly PathSegment[], message: string): string {
    let out = message;
    const here = this.#fromEnv.get(JSON.stringify(path));
    if (here) {
      // `${NAME}` alone (with or without a default) reads as "the value of ${NAME}".
      const single = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[-?][^}]*)?\}$/.exec(here.source);
      const source = single ? `the value of \${${single[1]}}` : JSON.stringify(here.source);
      if (typeof here.value === "string") {
        for (const shown of new Set([describe(here.value), JSON.stringify(here.value)])) {
          out = out.split(shown).join(source);
        }
      } else {
        // A number or boolean is only replaced where it is quoted as found, not in "at least 10".
        out = out.split(`got ${describe(here.value)}`).join(`got ${source}`);
      }
    }
    for (const [value, name] of this.#envValues) out = out.split(value).join(`\${${name}}`);
    return out;
  }

  error(): ConfigError {
    return new ConfigError(sortProblems(this.problems));
  }

  sortedWarnings(): ConfigProblem[] {
    return sortProblems(this.#warnings);
  }

  #problem(offset: number | undefined, path: readonly PathSegment[], message: string) {
    const { line, col } = offset === undefined ? { line: 0, col: 0 } : this.#lines.linePos(offset);
    return {
      file: this.#file,
      line,
      col,
      path: formatPath(path),
      message: this.#hide(path, message),
    };
  }

  /** Offset of the node at `path`, falling back to the key of the nearest existing ancestor. */
  #offset(path: readonly PathSegment[], target: "key" | "value"): number | undefined {
    let node: unknown = this.#doc.contents;
    let pair: Pair | undefined;
    let found = 0;
    for (const segment of path) {
      if (isAlias(node)) node = node.resolve(this.#doc);
      if (isMap(node)) {
        const next = node.items.find((p) => keyText(p) === String(segment));
        if (!next) break;
        pair = next;
        node = next.value;
      } else if (isSeq(node) && typeof segment === "number" && segment < node.items.length) {
        pair = undefined;
        node = node.items[segment];
      } else {
        break;
      }
      found++;
    }
    const complete = found === path.length;
    const keyOffset = pair && isNodeLike(pair.key) ? pair.key.range?.[0] : undefined;
    if (pair && (target === "key" || !complete) && keyOffset !== undefined) return keyOffset;
    if (isNodeLike(node) && node.range) return node.range[0];
    if (keyOffset !== undefined) return keyOffset;
    return (this.#doc.contents as Node | null)?.range?.[0] ?? 0;
  }
}

function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
}

function keyText(pair: Pair): string {
  const key = pair.key;
  if (isScalar(key)) return String(key.value);
  return String(key);
}

function isNodeLike(value: unknown): value is Node {
  return typeof value === "object" && value !== null && "range" in value;
}

/** yaml's messages without the code frame and final period. */
function yamlMessage(message: string): string {
  const first = message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "").trim();
  return first.replace(/\.$/, "");
}

/**
 * Visits every scalar and alias in value position (never keys), with its
 * path. An alias is not followed: its anchor is visited where it is defined.
 */
function walkScalars(
  node: unknown,
  path: PathSegment[],
  visit: (node: Scalar | Alias, path: PathSegment[]) => void,
): void {
  if (isScalar(node) || isAlias(node)) visit(node, path);
  else if (isMap(node)) {
    for (const pair of node.items) {
      if (isPair(pair)) walkScalars(pair.value, [...path, keyText(pair)], visit);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => walkScalars(item, [...path, i], visit));
  }
}

/**
 * Where to show a syntax error. yaml reports some errors where it noticed
 * them: at the indentation before a misplaced key (moved to the key), or at
 * the end of the file for an unclosed quote (moved to the opening quote).
 */
function syntaxErrorOffset(text: string, error: YAMLError): number {
  let offset = error.pos[0];
  const quote = /^Missing closing (["'])quote/.exec(error.message)?.[1];
  if (quote) {
    // Inside the unclosed scalar every quote is escaped (\" or ''), so the
    // opening quote is the last unescaped one before the error.
    for (let i = Math.min(offset, text.length) - 1; i >= 0; i--) {
      if (text[i] !== quote) continue;
      if (quote === '"' && text[i - 1] !== "\\") return i;
      if (quote === "'") {
        let run = 1;
        while (text[i - run] === "'") run++;
        if (run % 2 === 1) return i - run + 1;
        i -= run - 1;
      }
    }
    return offset;
  }
  while (text[offset] === " " || text[offset] === "\t") offset++;
  return offset;
}

// ---------------------------------------------------------------- helpers

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function entriesOf(value: unknown): [string, unknown][] {
  return isRecord(value) ? Object.entries(value) : [];
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function lowerFirst(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text.charAt(0).toLowerCase() + text.slice(1) : text;
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

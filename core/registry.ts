/**
 * The plugin registry: built-ins from a literal list plus third-party modules
 * named in `telemetry.yaml`. Nothing registers itself on import; duplicates
 * and malformed definitions are refused with a message naming the module.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { PluginError } from "./errors.ts";
import { type AnyPluginDefinition, PLUGIN_KINDS, type PluginKind } from "./plugin.ts";

const NAME = /^[a-z][a-z0-9_-]*$/;

/** Where a definition came from: `builtin` or the module specifier. */
export type PluginSource = string;

/** A registered definition and its origin. */
export interface RegisteredPlugin {
  definition: AnyPluginDefinition;
  source: PluginSource;
}

/**
 * Checks that `value` is a plugin definition; throws {@link PluginError}
 * naming `source` and the problem otherwise.
 */
export function checkDefinition(value: unknown, source: PluginSource): AnyPluginDefinition {
  const where = `Plugin module "${source}"`;
  if (typeof value !== "object" || value === null) {
    throw new PluginError(`${where} must default-export a definition made with definePlugin()`);
  }
  const def = value as Partial<AnyPluginDefinition>;
  if (typeof def.name !== "string" || !NAME.test(def.name)) {
    throw new PluginError(
      `${where} has an invalid name ${JSON.stringify(def.name)}: ` +
        "use lower-case letters, digits, _ and -, starting with a letter",
    );
  }
  if (!PLUGIN_KINDS.includes(def.kind as PluginKind)) {
    throw new PluginError(
      `${where} (plugin "${def.name}") has kind ${JSON.stringify(def.kind)}; ` +
        `expected one of ${PLUGIN_KINDS.map((k) => `"${k}"`).join(", ")}`,
    );
  }
  if (typeof def.summary !== "string" || def.summary.trim() === "") {
    throw new PluginError(`${where} (plugin "${def.name}") has no summary`);
  }
  const schema = def.config as { safeParse?: unknown } | undefined;
  if (!schema || typeof schema.safeParse !== "function") {
    throw new PluginError(
      `${where} (plugin "${def.name}") has no config schema; use z.strictObject({...})`,
    );
  }
  if (def.shared !== undefined && (def.kind !== "broker" || typeof def.shared !== "boolean")) {
    throw new PluginError(
      `${where} (plugin "${def.name}") has shared: ${JSON.stringify(def.shared)}; ` +
        "only a broker declares shared, as true or false",
    );
  }
  if (typeof def.create !== "function") {
    throw new PluginError(`${where} (plugin "${def.name}") has no create() function`);
  }
  return def as AnyPluginDefinition;
}

/** Plugins by kind and name. */
export class PluginRegistry {
  #byKind = new Map<PluginKind, Map<string, RegisteredPlugin>>(
    PLUGIN_KINDS.map((k) => [k, new Map()]),
  );

  /** A registry holding `definitions` (built-ins, or only what a test needs). */
  static of(definitions: readonly AnyPluginDefinition[], source = "builtin"): PluginRegistry {
    const registry = new PluginRegistry();
    for (const d of definitions) registry.register(d, source);
    return registry;
  }

  /** Adds a definition; throws {@link PluginError} on a malformed one or a duplicate name. */
  register(value: unknown, source: PluginSource): AnyPluginDefinition {
    const def = checkDefinition(value, source);
    const kind = this.#byKind.get(def.kind)!;
    const existing = kind.get(def.name);
    if (existing) {
      throw new PluginError(
        `Plugin module "${source}" defines ${def.kind} plugin "${def.name}", ` +
          `which is already defined by ${
            existing.source === "builtin" ? "a built-in plugin" : `"${existing.source}"`
          }`,
      );
    }
    kind.set(def.name, { definition: def, source });
    return def;
  }

  /** The definition of `kind` named `name`, if any. */
  get(kind: PluginKind, name: string): AnyPluginDefinition | undefined {
    return this.#byKind.get(kind)?.get(name)?.definition;
  }

  /** The definition and its source module, if any. */
  entry(kind: PluginKind, name: string): RegisteredPlugin | undefined {
    return this.#byKind.get(kind)?.get(name);
  }

  /** Names of the plugins of one kind, sorted. */
  names(kind: PluginKind): string[] {
    return [...this.#byKind.get(kind)!.keys()].sort();
  }

  /** Every registered plugin, by kind then name. */
  list(): RegisteredPlugin[] {
    return PLUGIN_KINDS.flatMap((k) =>
      [...this.#byKind.get(k)!.values()].sort((a, b) =>
        a.definition.name.localeCompare(b.definition.name)
      )
    );
  }

  /** A copy, so a test or a reload can add modules without touching the original. */
  clone(): PluginRegistry {
    const copy = new PluginRegistry();
    for (const p of this.list()) copy.register(p.definition, p.source);
    return copy;
  }
}

/**
 * Turns a `plugins:` entry into an importable specifier: relative and
 * absolute paths resolve against `baseDir`; `file:`, `https:`, `http:` and
 * `npm:` specifiers pass through.
 */
export function resolvePluginSpecifier(specifier: string, baseDir: string): string {
  if (/^(file|https?|npm|jsr):/.test(specifier)) return specifier;
  const path = isAbsolute(specifier) ? specifier : resolve(baseDir, specifier);
  return pathToFileURL(path).href;
}

/**
 * Imports a plugin module and returns its checked default export. Throws
 * {@link PluginError} naming the module when it cannot be imported, has no
 * default export, or exports something that is not a definition.
 */
export async function importPlugin(
  specifier: string,
  baseDir: string,
): Promise<AnyPluginDefinition> {
  const url = resolvePluginSpecifier(specifier, baseDir);
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new PluginError(`Cannot load plugin module "${specifier}": ${reason}`, { cause: error });
  }
  if (!("default" in mod) || mod.default === undefined) {
    throw new PluginError(
      `Plugin module "${specifier}" has no default export; ` +
        "export default definePlugin({...}) from core/mod.ts",
    );
  }
  return checkDefinition(mod.default, specifier);
}

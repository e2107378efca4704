/**
 * The plugin registry: built-ins from a literal list plus third-party modules
 * named in `telemetry.yaml`. Nothing registers itself on import; duplicates
 * and malformed definitions are refused with a message naming the module.
 *
 * @module
 */
import { isAbsolute, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
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

/** The content hash of each `file:` plugin module as first imported, by URL. */
const firstImported = new Map<string, string>();

/**
 * The URL to import a `file:` module by so that a changed file is imported
 * afresh: the plain URL while the file holds what it held when first
 * imported (the module cache answers), else the URL with `?v=<hash of the
 * content>` (a new module, evaluated once per version). Other URLs (`npm:`,
 * `https:`, `jsr:`) are returned as they are: they name fixed versions.
 * Only the module itself is re-read: modules it imports are cached by
 * their own URLs and keep their first version.
 */
export async function freshModuleUrl(url: string): Promise<string> {
  if (!url.startsWith("file:")) return url;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(new URL(url));
  } catch {
    return url; // The import says why it cannot be read.
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hash = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  const first = firstImported.get(url);
  if (first === undefined) firstImported.set(url, hash);
  return first === undefined || first === hash ? url : `${url}?v=${hash}`;
}

/**
 * What went wrong importing a module, in one line: with the `file:line:col`
 * Deno gives for a syntax error (the module's path, relative to the working
 * directory when inside it, without the `?v=` of {@link freshModuleUrl}).
 */
export function importErrorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const first = error.message.split("\n")[0]!;
  const at = error.message.match(/\n\s*at (\S+?)(?:\?v=[0-9a-f]+)?:(\d+):(\d+)\s*$/);
  if (!at) return first;
  return `${displayPath(at[1]!)}:${at[2]}:${at[3]}: ${first}`;
}

function displayPath(url: string): string {
  if (!url.startsWith("file:")) return url;
  try {
    const path = fileURLToPath(url);
    const rel = relative(Deno.cwd(), path);
    return rel.startsWith("..") || isAbsolute(rel) ? path : rel;
  } catch {
    return url;
  }
}

/**
 * Imports a plugin module and returns its checked default export; a `file:`
 * module changed since it was first imported is imported afresh
 * ({@link freshModuleUrl}). Throws {@link PluginError} naming the module
 * when it cannot be imported (with the position of a syntax error), has no
 * default export, or exports something that is not a definition.
 */
export async function importPlugin(
  specifier: string,
  baseDir: string,
): Promise<AnyPluginDefinition> {
  const url = await freshModuleUrl(resolvePluginSpecifier(specifier, baseDir));
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (error) {
    throw new PluginError(
      `Cannot load plugin module "${specifier}": ${importErrorMessage(error)}`,
      { cause: error },
    );
  }
  if (!("default" in mod) || mod.default === undefined) {
    throw new PluginError(
      `Plugin module "${specifier}" has no default export; ` +
        "export default definePlugin({...}) from core/mod.ts",
    );
  }
  return checkDefinition(mod.default, specifier);
}

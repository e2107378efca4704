/**
 * Error classes a caller branches on. Everything else is a plain `Error`
 * with a `cause`.
 *
 * @module
 */

/**
 * A handler failure worth trying again (a database that is restarting, a
 * webhook answering 503). Any error that is not a {@link PermanentError} is
 * treated as retryable, so throwing this is mainly for clarity.
 *
 * @example
 * ```ts
 * import { RetryableError } from "./errors.ts";
 * throw new RetryableError("Database is restarting", { cause: new Error("ECONNRESET") });
 * ```
 */
export class RetryableError extends Error {
  /** `"RetryableError"`: the name a task's {@link TaskError} records. */
  override name = "RetryableError";
}

/**
 * A dependency a handler needs cannot be reached at all (its database is
 * down, say): nothing is wrong with the task. The runtime spends no attempt
 * on it: the task goes back to the broker untouched and the pipeline's
 * workers hold off, with the retry policy's backoff, until the dependency
 * answers again. So an outage of any length dead-letters nothing.
 *
 * @example
 * ```ts
 * import { UnavailableError } from "./errors.ts";
 * throw new UnavailableError("Database unreachable", { cause: new Error("ECONNREFUSED") });
 * ```
 */
export class UnavailableError extends RetryableError {
  /**
   * `"UnavailableError"`: {@link isUnavailable} also goes by the name, so an
   * error made by another copy of the SDK counts too.
   */
  override name = "UnavailableError";
}

/**
 * Whether an error means "a dependency is down; try again later without spending an attempt".
 *
 * @example
 * ```ts
 * import { isUnavailable, UnavailableError } from "@telemetryhub/telemetryhub";
 * isUnavailable(new UnavailableError("Database unreachable")); // true
 * isUnavailable(new Error("Bad row")); // false
 * ```
 */
export function isUnavailable(error: unknown): boolean {
  return error instanceof UnavailableError ||
    (error instanceof Error && error.name === "UnavailableError");
}

/**
 * A handler failure that will fail the same way every time (malformed
 * payload, a 4xx from a webhook). The runtime dead-letters the task at once.
 *
 * @example
 * ```ts
 * import { PermanentError } from "./errors.ts";
 * throw new PermanentError('Sample has no "device"');
 * ```
 */
export class PermanentError extends Error {
  /**
   * `"PermanentError"`: {@link isPermanent} also goes by the name, so an
   * error made by another copy of the SDK counts too.
   */
  override name = "PermanentError";
}

/** One positioned configuration problem. */
export interface ConfigProblem {
  /** File the problem is in (or `<input>` for posted text). */
  file: string;
  /** 1-based line, 0 when unknown. */
  line: number;
  /** 1-based column, 0 when unknown. */
  col: number;
  /** Dotted path in the document, e.g. `pipelines.main.workers`; empty for the root. */
  path: string;
  /** What is wrong, in sentence case without a final period, e.g. `Expected a number`. */
  message: string;
}

/**
 * Formats a problem as `file:line:col path: message`.
 *
 * @example
 * ```ts
 * import { formatProblem } from "@telemetryhub/telemetryhub";
 * formatProblem({ file: "telemetry.yaml", line: 3, col: 5, path: "pipelines.main.workers", message: "Expected a number" });
 * // "telemetry.yaml:3:5 pipelines.main.workers: Expected a number"
 * ```
 */
export function formatProblem(p: ConfigProblem): string {
  const where = `${p.file}:${p.line}:${p.col}`;
  return p.path ? `${where} ${p.path}: ${p.message}` : `${where} ${p.message}`;
}

/**
 * A configuration that cannot be used; carries every problem found.
 *
 * @example
 * ```ts
 * import { ConfigError } from "@telemetryhub/telemetryhub";
 * const error = new ConfigError([
 *   { file: "telemetry.yaml", line: 3, col: 5, path: "pipelines.main.workers", message: "Expected a number" },
 * ]);
 * error.problems.length; // 1
 * error.message; // "telemetry.yaml:3:5 pipelines.main.workers: Expected a number"
 * ```
 */
export class ConfigError extends Error {
  /** The class name, which logs and serialized errors keep where `instanceof` cannot be used. */
  override name = "ConfigError";
  /** Every problem found, not only the first (the loader sorts them by line and column). */
  readonly problems: readonly ConfigProblem[];
  /** The message lists each problem as {@link formatProblem} writes it, one per line. */
  constructor(problems: readonly ConfigProblem[], options?: ErrorOptions) {
    super(problems.map(formatProblem).join("\n"), options);
    this.problems = problems;
  }
}

/**
 * A plugin module that cannot be loaded or registered.
 *
 * @example
 * ```ts
 * import { PluginError } from "@telemetryhub/telemetryhub";
 * const error = new PluginError('Plugin module "./my_plugin.ts" has no default export');
 * error.name; // "PluginError"
 * ```
 */
export class PluginError extends Error {
  /** The class name, which logs and serialized errors keep where `instanceof` cannot be used. */
  override name = "PluginError";
}

/**
 * Whether an error means "do not try again".
 *
 * @example
 * ```ts
 * import { isPermanent, PermanentError } from "@telemetryhub/telemetryhub";
 * isPermanent(new PermanentError("Malformed payload")); // true
 * isPermanent(new Error("Connection reset")); // false: retried
 * ```
 */
export function isPermanent(error: unknown): boolean {
  return error instanceof PermanentError ||
    (error instanceof Error && error.name === "PermanentError");
}

/**
 * A short, single-line description of any thrown value.
 *
 * @example
 * ```ts
 * import { errorMessage } from "@telemetryhub/telemetryhub";
 * errorMessage(new TypeError("Bad value")); // "Bad value"
 * errorMessage("boom"); // "boom"
 * ```
 */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

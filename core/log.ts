/**
 * Structured logging: one JSON object per line when stderr is not a
 * terminal, readable lines when it is. Every line goes through the one
 * redaction (known secrets, URL passwords, token-like URL paths and query
 * parameters).
 *
 * @module
 */
import { redactText } from "./redact.ts";

/** Log levels, least to most severe. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Extra structured fields of a log line. */
export type LogFields = Record<string, unknown>;

/** A logger handed to plugins and used by the runtime. */
export interface Logger {
  /** Detail for diagnosing a problem; hidden at the default level `info`. */
  debug(message: string, fields?: LogFields): void;
  /** A normal event worth a line (started, connected). */
  info(message: string, fields?: LogFields): void;
  /** Something went wrong and was handled (a retry, a dropped item). */
  warn(message: string, fields?: LogFields): void;
  /** Something failed and needs attention. */
  error(message: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

/** Where formatted lines go. */
export type LogSink = (line: string, level: LogLevel) => void;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lines below this level are dropped; default `info`. */
  level?: LogLevel;
  /**
   * `json` (one object per line) or `pretty` (a readable line); default
   * `pretty` when stderr is a terminal, `json` otherwise.
   */
  format?: "json" | "pretty";
  /** Where lines go, already formatted and redacted; default stderr. */
  sink?: LogSink;
  /** Values never to print (secrets); replaced by `***`. */
  secrets?: ReadonlySet<string>;
  /** Time of each line in milliseconds since the epoch; default `Date.now`. */
  clock?: () => number;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const encoder = new TextEncoder();

function defaultSink(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

function scrub(text: string, secrets: ReadonlySet<string> | undefined): string {
  return redactText(text, secrets);
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (typeof value === "bigint") return value.toString();
  return value;
}

function pretty(value: unknown): string {
  if (typeof value === "string") return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value, jsonSafe);
}

/**
 * Creates a logger.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger({ level: "info", format: "json", sink: (l) => lines.push(l) });
 * log.child({ device: "boiler" }).info("Device up");
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const {
    level = "info",
    format = Deno.stderr.isTerminal() ? "pretty" : "json",
    sink = defaultSink,
    secrets,
    clock = Date.now,
  } = options;
  const threshold = RANK[level];

  function make(bound: LogFields): Logger {
    function write(lvl: LogLevel, message: string, fields?: LogFields): void {
      if (RANK[lvl] < threshold) return;
      const all = fields ? { ...bound, ...fields } : bound;
      let line: string;
      if (format === "json") {
        line = JSON.stringify(
          { time: new Date(clock()).toISOString(), level: lvl, msg: message, ...all },
          jsonSafe,
        );
      } else {
        const time = new Date(clock()).toISOString().slice(11, 23);
        const extras = Object.entries(all).map(([k, v]) => `${k}=${pretty(v)}`).join(" ");
        line = `${time} ${lvl.toUpperCase().padEnd(5)} ${message}${extras ? " " + extras : ""}`;
      }
      sink(scrub(line, secrets), lvl);
    }
    return {
      debug: (m, f) => write("debug", m, f),
      info: (m, f) => write("info", m, f),
      warn: (m, f) => write("warn", m, f),
      error: (m, f) => write("error", m, f),
      child: (fields) => make({ ...bound, ...fields }),
    };
  }
  return make({});
}

/** A logger that drops everything (for tests and tools). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};

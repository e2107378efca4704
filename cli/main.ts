/**
 * The `telemetryhub` command line: `run`, `validate`, `plugins`, `schema`.
 * Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { builtinRegistry } from "./builtins.ts";
import { configJsonSchema, loadConfigFile } from "../core/config/mod.ts";
import { type Role, ROLES } from "../core/config/schema.ts";
import { runConfigTests } from "../core/config/tests.ts";
import { MAX_TIMER_MS, parseDuration } from "../core/duration.ts";
import { ConfigError, errorMessage, formatProblem } from "../core/errors.ts";
import { createLogger, LOG_LEVELS, type LogLevel } from "../core/log.ts";
import { describeFields } from "../core/plugin_docs.ts";
import type { PluginRegistry } from "../core/registry.ts";
import { formatSummary, Runtime } from "../core/runtime/runtime.ts";
import { createAdminApp, type ReloadOutcome } from "../core/admin/app.ts";
import { type AdminListener, serveAdmin } from "../core/admin/serve.ts";
import { redactText } from "../core/redact.ts";
import denoJson from "../deno.json" with { type: "json" };

const USAGE = `Usage: telemetryhub <command> [options]

Commands:
  run [--config FILE] [--role all|hub|processor] [--for DURATION]
                      Start the pipelines of FILE (default: telemetry.yaml,
                      or $TELEMETRY_CONFIG). Ctrl-C stops cleanly; a second
                      Ctrl-C, a second or more later, exits at once.
  validate [FILE] [--role all|hub|processor]
                      Check a configuration as run would take it, and run its tests:
                      section; exit 0 when valid and every test passes, 1 when a test
                      fails, 2 when invalid
  plugins [--json] [--config FILE]
                      List every plugin with its config fields
  schema [--config FILE]
                      Print the JSON Schema of telemetry.yaml
  version             Print the version (also --version)

Every command takes --help and --version. Exit codes: 0 success, 1 failure while running (or a
failing config test), 2 invalid configuration or usage, 130 a second stop signal.

Environment: TELEMETRY_CONFIG, TELEMETRY_ROLE, TELEMETRY_LOG_LEVEL`;

/** Each command's own usage, printed by `<command> --help`. */
const COMMAND_USAGE: Record<string, string> = {
  run: `Usage: telemetryhub run [--config FILE | FILE] [--role all|hub|processor] [--for DURATION]

Starts the pipelines of FILE (default: telemetry.yaml, or $TELEMETRY_CONFIG) in the
role given (default: role: of the file, or $TELEMETRY_ROLE). --for stops after
DURATION, which needs a unit: 500ms, 30s, 5m, 1h. Ctrl-C or SIGTERM drains and
prints a summary; a second signal a second or more later exits at once (130).`,
  validate: `Usage: telemetryhub validate [--config FILE | FILE] [--role all|hub|processor]

Checks FILE as run would take it in that role, then runs its tests: section.
Exit 0 when valid and every test passes, 1 when a test fails, 2 when invalid.`,
  plugins: `Usage: telemetryhub plugins [--json] [--config FILE]

Lists every plugin (with --config, also those FILE loads) with its config fields.`,
  schema: `Usage: telemetryhub schema [--config FILE]

Prints the JSON Schema of telemetry.yaml: the core keys and every built-in plugin's
block, and with --config also the third-party plugins FILE loads. Interpolated
values (\${VAR}, \${VAR:-default}) are accepted wherever validate accepts them.`,
  version: `Usage: telemetryhub version

Prints the version of TelemetryHub and of the Deno runtime.`,
};

/** The version line: `--version`, `version`, the status route and the build-info metric. */
export function versionLine(): string {
  return `telemetryhub ${denoJson.version} (deno ${Deno.version.deno})`;
}

/** A usage error: printed with the command's usage, exit code 2. */
class UsageError extends Error {
  override name = "UsageError";
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}

/** At most one positional argument (the file), for commands that take one. */
function onePositional(positionals: string[], command: string): string | undefined {
  if (positionals.length > 1) {
    throw new UsageError(
      `Too many arguments: ${positionals.map((p) => `"${p}"`).join(", ")}; ` +
        `${command} takes one configuration file`,
      command,
    );
  }
  return positionals[0];
}

/** Output streams, replaceable in tests. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

const encoder = new TextEncoder();
const stdio: CliIO = {
  out: (t) => Deno.stdout.writeSync(encoder.encode(t + "\n")),
  err: (t) => Deno.stderr.writeSync(encoder.encode(t + "\n")),
};

function defaultConfigPath(): string {
  return Deno.env.get("TELEMETRY_CONFIG") || "telemetry.yaml";
}

function printConfigError(error: ConfigError, io: CliIO): void {
  for (const p of error.problems) io.err(formatProblem(p));
  const n = error.problems.length;
  io.err(`${n} problem${n === 1 ? "" : "s"} found`);
}

async function load(path: string, registry: PluginRegistry, role?: Role) {
  return await loadConfigFile(path, {
    file: path,
    registry,
    baseDir: dirname(resolve(path)),
    ...(role ? { role } : {}),
  });
}

async function validateCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      role: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return help("validate", io);
  const file = onePositional(positionals, "validate");
  if (values.config !== undefined && file !== undefined) {
    throw new UsageError("Give the file once: as --config or as the argument", "validate");
  }
  const path = values.config ?? file ?? defaultConfigPath();
  // The role run would take, so that validate refuses what run refuses.
  const role = pickRole(values.role, io);
  if (role === null) return 2;
  try {
    const loaded = await load(path, builtinRegistry(), role);
    for (const w of loaded.warnings) io.err(`warning: ${formatProblem(w)}`);
    io.out(`${path}: valid`);
    if (loaded.config.tests.length === 0) return 0;
    const results = await runConfigTests(loaded, {
      baseDir: dirname(resolve(path)),
      logger: createLogger({ level: "warn", secrets: loaded.secrets }),
    });
    for (const r of results) {
      io.out(`  ${r.ok ? "ok  " : "FAIL"} tests[${r.index}] ${r.name}`);
      for (const problem of r.problems) io.out(`         ${problem}`);
    }
    const failed = results.filter((r) => !r.ok).length;
    const passed = results.length - failed;
    io.out(`${path}: ${passed} config test${passed === 1 ? "" : "s"} passed, ${failed} failed`);
    return failed > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      printConfigError(error, io);
      return 2;
    }
    throw error;
  }
}

async function pluginsCommand(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: "boolean" },
      config: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return help("plugins", io);
  let registry = builtinRegistry();
  if (values.config) registry = (await load(values.config, registry)).registry;
  const list = registry.list().map(({ definition: d, source }) => ({
    kind: d.kind,
    name: d.name,
    summary: d.summary,
    version: d.version,
    source,
    fields: describeFields(d.config),
  }));
  if (values.json) {
    io.out(JSON.stringify(list, null, 2));
    return 0;
  }
  for (const p of list) {
    io.out(`${p.kind} ${p.name}${p.version ? `@${p.version}` : ""} — ${p.summary}`);
    if (p.source !== "builtin") io.out(`  from ${p.source}`);
    if (p.fields.length === 0) io.out("  (no settings)");
    for (const f of p.fields) {
      const dflt = f.required
        ? " (required)"
        : f.default === undefined
        ? ""
        : ` = ${JSON.stringify(f.default)}`;
      io.out(`  ${f.path}: ${f.type}${dflt}`);
      if (f.description) io.out(`      ${f.description}`);
    }
    io.out("");
  }
  return 0;
}

async function schemaCommand(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return help("schema", io);
  // With --config, the third-party plugins that file loads are in the schema too.
  const registry = values.config
    ? (await load(values.config, builtinRegistry())).registry
    : builtinRegistry();
  io.out(JSON.stringify(configJsonSchema(registry), null, 2));
  return 0;
}

/**
 * How long after the first stop signal another SIGINT or SIGTERM is the same
 * stop. Ctrl-C in a terminal signals the whole foreground process group, so
 * under `deno task` this process gets SIGINT from the terminal and again from
 * `deno task` passing its own on; `kill -TERM -- -PGID` (and systemd's default
 * `KillMode=control-group`) does the same with SIGTERM. Those copies arrive
 * within milliseconds; a person pressing Ctrl-C again to give up on the drain
 * takes longer than a second.
 */
export const REPEATED_STOP_SIGNAL_MS = 1000;

/**
 * What a SIGINT or SIGTERM received at `now` means, given when the first one
 * arrived (`undefined`: none yet); times from one monotonic clock, in ms.
 */
export function stopSignalMeaning(
  firstAt: number | undefined,
  now: number,
): "stop" | "same stop" | "exit now" {
  if (firstAt === undefined) return "stop";
  return now - firstAt < REPEATED_STOP_SIGNAL_MS ? "same stop" : "exit now";
}

function pickRole(flag: string | undefined, io: CliIO): Role | undefined | null {
  const value = flag ?? Deno.env.get("TELEMETRY_ROLE");
  if (value === undefined || value === "") return undefined;
  if ((ROLES as readonly string[]).includes(value)) return value as Role;
  io.err(
    `Unknown role "${value}"${flag === undefined ? " in TELEMETRY_ROLE" : ""}; ` +
      `expected one of ${ROLES.map((r) => `"${r}"`).join(", ")}`,
  );
  return null;
}

async function runCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      role: { type: "string" },
      for: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return help("run", io);
  const file = onePositional(positionals, "run");
  if (values.config !== undefined && file !== undefined) {
    throw new UsageError("Give the file once: as --config or as the argument", "run");
  }
  const path = values.config ?? file ?? defaultConfigPath();
  const role = pickRole(values.role, io);
  if (role === null) return 2;
  let runFor: number | undefined;
  if (values.for !== undefined) {
    // On the command line a bare number is a mistake more often than milliseconds.
    runFor = /[a-z]\s*$/i.test(values.for) ? parseDuration(values.for) : undefined;
    if (runFor === undefined) {
      io.err(`Invalid --for "${values.for}"; expected a duration with a unit such as "10s"`);
      return 2;
    }
    if (runFor > MAX_TIMER_MS) {
      io.err(
        `Invalid --for "${values.for}"; must be at most ${MAX_TIMER_MS}ms (about 24.8 days), ` +
          "the longest a timer can wait",
      );
      return 2;
    }
  }
  let loaded;
  try {
    loaded = await load(path, builtinRegistry(), role);
  } catch (error) {
    if (error instanceof ConfigError) {
      printConfigError(error, io);
      return 2;
    }
    throw error;
  }
  const envLevel = Deno.env.get("TELEMETRY_LOG_LEVEL");
  const level: LogLevel = (LOG_LEVELS as readonly string[]).includes(envLevel ?? "")
    ? envLevel as LogLevel
    : loaded.config.log.level;
  const format = loaded.config.log.format;
  // One set for the process: secrets of reloaded configurations join it.
  const secrets = new Set(loaded.secrets);
  const logger = createLogger({
    level,
    ...(format === "auto" ? {} : { format }),
    secrets,
  });
  for (const w of loaded.warnings) logger.warn(formatProblem(w));

  let runtime: Runtime;
  try {
    runtime = await Runtime.create(loaded, {
      ...(role ? { role } : {}),
      logger,
      baseDir: dirname(resolve(path)),
    });
  } catch (error) {
    // A plugin's create() may quote its settings (a database URL with its password).
    io.err(redactText(errorMessage(error), secrets));
    return 1;
  }

  const stopRequested = Promise.withResolvers<string>();
  let firstStopAt: number | undefined;
  const onSignal = (name: Deno.Signal) => () => {
    const now = performance.now();
    switch (stopSignalMeaning(firstStopAt, now)) {
      case "stop":
        firstStopAt = now;
        logger.info("Stopping", { signal: name });
        stopRequested.resolve(name);
        break;
      case "same stop":
        logger.debug("Stop signal repeated at once; taken as the same stop", { signal: name });
        break;
      case "exit now":
        io.err("Second stop signal: exiting without waiting");
        Deno.exit(130);
    }
  };
  const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => {
    const h = onSignal(s);
    Deno.addSignalListener(s, h);
    return [s, h] as const;
  });
  const timer = runFor === undefined
    ? undefined
    : setTimeout(() => stopRequested.resolve("timer"), runFor);

  let redacted = loaded.redacted;
  let listener: AdminListener | undefined;
  let reloading: Promise<ReloadOutcome> | undefined;
  const reload = (): Promise<ReloadOutcome> => {
    // One reload at a time; a second request waits for the first.
    const run = async (): Promise<ReloadOutcome> => {
      let next;
      try {
        next = await load(path, builtinRegistry(), role);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        const problems = error.problems.map(formatProblem);
        logger.error("Reload refused: the configuration is invalid; keeping the running one", {
          problems,
        });
        return { ok: false, problems };
      }
      for (const s of next.secrets) secrets.add(s);
      try {
        const report = await runtime.reload(next);
        redacted = next.redacted;
        // Renewed certificate files are picked up by any reload.
        await listener?.reloadTls();
        return { ok: true, restarted: report.restarted, unchanged: report.unchanged };
      } catch (error) {
        logger.error("Reload failed", { error: errorMessage(error) });
        return { ok: false, problems: [errorMessage(error)] };
      }
    };
    reloading = (reloading ?? Promise.resolve()).then(run, run);
    return reloading;
  };
  const onHangup = () => void reload();
  Deno.addSignalListener("SIGHUP", onHangup);

  // Listen before starting anything, so a busy port stops the process before it reads a
  // device or takes a task.
  const serverAbort = new AbortController();
  if (loaded.config.admin.enabled) {
    runtime.metrics.enableDefaultMetrics();
    const app = createAdminApp(runtime, {
      registry: loaded.registry,
      redactedConfig: () => redacted,
      version: denoJson.version,
      reload,
      secrets,
      baseDir: dirname(resolve(path)),
      ...(role ? { role } : {}),
    });
    try {
      listener = await serveAdmin(app, {
        admin: loaded.config.admin,
        baseDir: dirname(resolve(path)),
        logger,
        signal: serverAbort.signal,
      });
    } catch (error) {
      io.err(
        redactText(
          `Cannot serve the admin API on "${loaded.config.admin.listen}": ${errorMessage(error)}` +
            " (change admin.listen or admin.tls, or set admin.enabled: false)",
          secrets,
        ),
      );
      await runtime.stop();
      Deno.removeSignalListener("SIGHUP", onHangup);
      for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
      if (timer !== undefined) clearTimeout(timer);
      return 1;
    }
  }
  runtime.start();
  await stopRequested.promise;
  if (timer !== undefined) clearTimeout(timer);
  Deno.removeSignalListener("SIGHUP", onHangup);
  await reloading?.catch(() => {});
  const summary = await runtime.stop();
  serverAbort.abort();
  await listener?.finished;
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  io.out(formatSummary(summary));
  return 0;
}

function help(command: string, io: CliIO): number {
  io.out(COMMAND_USAGE[command] ?? USAGE);
  return 0;
}

/** Runs the CLI; returns the exit code. */
export async function main(args: string[], io: CliIO = stdio): Promise<number> {
  const [command, ...rest] = args;
  // `deno task run --version` (the tasks name their command): every command answers it.
  if (rest.includes("--version")) {
    io.out(versionLine());
    return 0;
  }
  try {
    switch (command) {
      case "run":
        return await runCommand(rest, io);
      case "validate":
        return await validateCommand(rest, io);
      case "plugins":
        return await pluginsCommand(rest, io);
      case "schema":
        return await schemaCommand(rest, io);
      case "version":
      case "--version":
      case "-V": {
        const { values } = parseArgs({ args: rest, options: { help: { type: "boolean" } } });
        if (values.help) return help("version", io);
        io.out(versionLine());
        return 0;
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        io.err(`Unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      printConfigError(error, io);
      return 2;
    }
    if (error instanceof UsageError) {
      io.err(`${error.message}\n\n${COMMAND_USAGE[error.command ?? ""] ?? USAGE}`);
      return 2;
    }
    if (
      error instanceof TypeError && /ERR_PARSE_ARGS/.test(String((error as { code?: string }).code))
    ) {
      io.err(`${error.message}\n\n${(command && COMMAND_USAGE[command]) ?? USAGE}`);
      return 2;
    }
    io.err(`Error: ${redactText(errorMessage(error))}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

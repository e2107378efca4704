/**
 * What the commands of the command line share: usage texts and usage
 * errors, the output streams, and loading a configuration file.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { loadConfigFile } from "../core/config/mod.ts";
import { type Role, ROLES } from "../core/config/schema.ts";
import { type ConfigError, formatProblem } from "../core/errors.ts";
import type { PluginRegistry } from "../core/registry.ts";
import denoJson from "../deno.json" with { type: "json" };

export const USAGE = `Usage: telemetryhub <command> [options]

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
export const COMMAND_USAGE: Record<string, string> = {
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
export class UsageError extends Error {
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

/**
 * The configuration file a command names: `--config FILE` or one argument
 * (not both), else $TELEMETRY_CONFIG or telemetry.yaml.
 */
export function configPath(
  flag: string | undefined,
  positionals: string[],
  command: string,
): string {
  const file = onePositional(positionals, command);
  if (flag !== undefined && file !== undefined) {
    throw new UsageError("Give the file once: as --config or as the argument", command);
  }
  return flag ?? file ?? defaultConfigPath();
}

/** Output streams, replaceable in tests. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

/** `TELEMETRY_CONFIG`, else `telemetry.yaml`. */
export function defaultConfigPath(): string {
  return Deno.env.get("TELEMETRY_CONFIG") || "telemetry.yaml";
}

/** Prints every problem of a configuration and how many there are. */
export function printConfigError(error: ConfigError, io: CliIO): void {
  for (const p of error.problems) io.err(formatProblem(p));
  const n = error.problems.length;
  io.err(`${n} problem${n === 1 ? "" : "s"} found`);
}

/** Loads the configuration file at `path`, its paths resolved against its directory. */
export async function load(path: string, registry: PluginRegistry, role?: Role) {
  return await loadConfigFile(path, {
    file: path,
    registry,
    baseDir: dirname(resolve(path)),
    ...(role ? { role } : {}),
  });
}

/** Prints the usage of `command`; exit code 0. */
export function help(command: string, io: CliIO): number {
  io.out(COMMAND_USAGE[command] ?? USAGE);
  return 0;
}

/** The role from `--role` or `TELEMETRY_ROLE`; `null` (reported) when it is unknown. */
export function pickRole(flag: string | undefined, io: CliIO): Role | undefined | null {
  const value = flag ?? Deno.env.get("TELEMETRY_ROLE");
  if (value === undefined || value === "") return undefined;
  if ((ROLES as readonly string[]).includes(value)) return value as Role;
  io.err(
    `Unknown role "${value}"${flag === undefined ? " in TELEMETRY_ROLE" : ""}; ` +
      `expected one of ${ROLES.map((r) => `"${r}"`).join(", ")}`,
  );
  return null;
}

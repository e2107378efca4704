/**
 * The `telemetryhub` command line: `run`, `validate`, `plugins`, `schema`.
 * Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError, errorMessage } from "../core/errors.ts";
import { redactText } from "../core/redact.ts";
import {
  type CliIO,
  COMMAND_USAGE,
  help,
  printConfigError,
  USAGE,
  UsageError,
  versionLine,
} from "./_common.ts";
import { pluginsCommand, schemaCommand } from "./_plugins.ts";
import { runCommand } from "./_run.ts";
import { validateCommand } from "./_validate.ts";

export { type CliIO, versionLine } from "./_common.ts";
export { REPEATED_STOP_SIGNAL_MS, stopSignalMeaning } from "./_run.ts";

const encoder = new TextEncoder();
const stdio: CliIO = {
  out: (t) => Deno.stdout.writeSync(encoder.encode(t + "\n")),
  err: (t) => Deno.stderr.writeSync(encoder.encode(t + "\n")),
};

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

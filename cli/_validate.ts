/**
 * `telemetryhub validate`: checks a configuration file and runs its tests.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { builtinRegistry } from "./builtins.ts";
import { runConfigTests } from "../core/config/tests.ts";
import { ConfigError, formatProblem } from "../core/errors.ts";
import { createLogger } from "../core/log.ts";
import { type CliIO, configPath, help, load, pickRole, printConfigError } from "./_common.ts";

export async function validateCommand(args: string[], io: CliIO): Promise<number> {
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
  const path = configPath(values.config, positionals, "validate");
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

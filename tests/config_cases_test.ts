/**
 * Golden cases of the configuration loader. Each folder of
 * `tests/config_cases/` (folders starting with `_` excepted) holds:
 *
 * - `telemetry.yaml`: the file loaded (shown as `telemetry.yaml` in messages);
 * - `env.json` (optional): the environment variables of the case;
 * - `expected.txt`: the exact problem lines, `file:line:col path: message`;
 *   for a valid file, its warnings as `warning: ...` lines, or nothing;
 * - `redacted.json` (optional, valid cases): the effective configuration with
 *   secrets redacted, without its machine-specific `file`.
 *
 * Run with `UPDATE_GOLDEN=1` (and `--allow-write`) to rewrite the expected files.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, formatProblem } from "../core/errors.ts";
import { loadConfigFile } from "../core/config/mod.ts";
import { fixtureRegistry } from "./config_cases/_fixtures.ts";

const CASES = new URL("./config_cases/", import.meta.url).pathname;
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

const names = [...Deno.readDirSync(CASES)]
  .filter((entry) => entry.isDirectory && !entry.name.startsWith("_"))
  .map((entry) => entry.name)
  .sort();

for (const name of names) {
  const dir = join(CASES, name);
  Deno.test(`loadConfigFile() reports exactly the expected problems for case "${name}"`, async () => {
    const envText = await readOptional(join(dir, "env.json"));
    const env = envText === undefined ? {} : JSON.parse(envText) as Record<string, string>;
    let lines: string[];
    let redacted: unknown;
    try {
      const loaded = await loadConfigFile(join(dir, "telemetry.yaml"), {
        file: "telemetry.yaml",
        env,
        registry: fixtureRegistry(),
      });
      lines = loaded.warnings.map((w) => `warning: ${formatProblem(w)}`);
      const { file: _file, ...rest } = loaded.redacted as Record<string, unknown>;
      redacted = rest;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      lines = error.problems.map(formatProblem);
    }
    const actual = lines.map((line) => line + "\n").join("");
    const expectedPath = join(dir, "expected.txt");
    const redactedPath = join(dir, "redacted.json");
    if (UPDATE) {
      await Deno.writeTextFile(expectedPath, actual);
      if (redacted !== undefined) {
        await Deno.writeTextFile(redactedPath, JSON.stringify(redacted, null, 2) + "\n");
      }
      return;
    }
    const expected = await readOptional(expectedPath);
    assert.ok(
      expected !== undefined,
      `Case "${name}" has no expected.txt; run with UPDATE_GOLDEN=1`,
    );
    assert.equal(actual, expected);
    const expectedRedacted = await readOptional(redactedPath);
    if (expectedRedacted !== undefined) {
      assert.ok(redacted !== undefined, `Case "${name}" has redacted.json but does not load`);
      assert.deepEqual(redacted, JSON.parse(expectedRedacted));
    }
  });
}

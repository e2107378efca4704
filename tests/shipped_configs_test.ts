/**
 * The configurations we ship with a database (`telemetry.yaml`,
 * `deploy/telemetry.fleet.yaml`, `examples/mqtt.yaml`): every handler that
 * writes to it follows `DATABASE_URL`, so setting it moves all the data at
 * once, and their config tests pass.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { builtinRegistry } from "../cli/builtins.ts";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";
import { configJsonSchema, loadConfigFile } from "../core/config/mod.ts";
import { runConfigTests } from "../core/config/tests.ts";
import { silentLogger } from "../core/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DATABASE_HANDLERS = new Set(["store", "aggregate", "anomaly"]);

for (const file of ["telemetry.yaml", "deploy/telemetry.fleet.yaml", "examples/mqtt.yaml"]) {
  Deno.test(`${file}: every database handler uses DATABASE_URL when it is set`, async () => {
    const url = "postgres://telemetry:secret@db.example:5432/telemetry";
    const loaded = await loadConfigFile(join(ROOT, file), {
      file,
      registry: builtinRegistry(),
      env: { DATABASE_URL: url, TELEMETRY_ADMIN_TOKEN: "t" },
    });
    const handlers = Object.entries(loaded.config.handlers)
      .filter(([, h]) => DATABASE_HANDLERS.has(h.type));
    assert.ok(handlers.length >= 2, `${file} has database handlers`);
    for (const [name, handler] of handlers) {
      assert.equal((handler.config as { url?: string }).url, url, `handler "${name}"`);
    }
    const results = await runConfigTests(loaded, {
      baseDir: join(ROOT, file, ".."),
      logger: silentLogger,
    });
    assert.deepEqual(results.filter((r) => !r.ok), [], `${file}: config tests pass`);
  });
}

for (
  const file of [
    "telemetry.yaml",
    "deploy/telemetry.fleet.yaml",
    "examples/mqtt.yaml",
    "examples/telemetry.yaml",
  ]
) {
  Deno.test(`${file}: the JSON Schema of deno task schema accepts it as validate does`, async () => {
    const path = join(ROOT, file);
    // validate accepts it (its third-party plugins loaded), so the schema must too.
    const loaded = await loadConfigFile(path, {
      file,
      registry: builtinRegistry(),
      env: { TELEMETRY_ADMIN_TOKEN: "t" },
      baseDir: join(path, ".."),
    });
    // Quiet: formats such as "uri" are annotations here, not checks.
    const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false });
    const check = ajv.compile(configJsonSchema(loaded.registry));
    const ok = check(parse(await Deno.readTextFile(path)));
    assert.ok(ok, JSON.stringify(check.errors?.slice(0, 5), null, 2));
  });
}

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { builtinRegistry } from "../cli/builtins.ts";
import { loadConfigFile } from "../core/config/mod.ts";
import { runConfigTests } from "../core/config/tests.ts";
import type { HandlerInstance, Sample } from "../core/mod.ts";
import { Runtime } from "../core/runtime/runtime.ts";
import { handlerContext, recordingLogger, testContext } from "../core/testing.ts";
import { waitFor } from "./_fixtures/runtime.ts";

const YAML = fileURLToPath(new URL("../examples/telemetry.yaml", import.meta.url));

Deno.test("the config tests of examples/telemetry.yaml pass", async () => {
  const loaded = await loadConfigFile(YAML, { registry: builtinRegistry(), env: {} });
  const results = await runConfigTests(loaded, {
    baseDir: fileURLToPath(new URL("../examples/", import.meta.url)),
    logger: recordingLogger().logger,
  });
  assert.ok(results.length > 0);
  assert.deepEqual(results.filter((r) => !r.ok), []);
});

Deno.test("examples/telemetry.yaml loads the clamp handler from its plugins list", async () => {
  const loaded = await loadConfigFile(YAML, { registry: builtinRegistry(), env: {} });
  const entry = loaded.registry.entry("handler", "clamp");
  assert.ok(entry, "clamp is registered");
  assert.notEqual(entry.source, "builtin");
  assert.deepEqual(loaded.config.handlers.clamp!.config, {
    limits: { temperature: { min: 0, max: 60 }, humidity: { min: 0, max: 100 } },
    mark_bad: true,
    reject_nan: true,
  });

  const handler = await entry.definition.create(
    loaded.config.handlers.clamp!.config,
    testContext({ name: "clamp" }),
  ) as HandlerInstance;
  const input: Sample[] = [
    { device: "boiler", metric: "temperature", value: 75, ts: 1 },
    { device: "boiler", metric: "temperature", value: 40, ts: 2 },
    { device: "boiler", metric: "humidity", value: -3, ts: 2 },
    { device: "boiler", metric: "pressure", value: 999, ts: 2 },
  ];
  const out = await handler.handle(input, handlerContext({ pipeline: "main" }));
  assert.ok(out);
  assert.deepEqual(out.map((s) => [s.metric, s.value, s.quality]), [
    ["temperature", 60, "bad"],
    ["temperature", 40, undefined],
    ["humidity", 0, "bad"],
    ["pressure", 999, undefined],
  ]);
  assert.equal(input[0]!.value, 75, "input samples are not modified");
  assert.equal(
    await handler.handle(input.slice(1, 2), handlerContext({ pipeline: "main" })),
    undefined,
  );
  assert.throws(
    () =>
      handler.handle(
        [{ device: "boiler", metric: "x", value: NaN, ts: 1 }],
        handlerContext({ pipeline: "main" }),
      ),
    { name: "PermanentError", message: 'Sample 0 of "boiler" has a non-finite value' },
  );
});

Deno.test("examples/telemetry.yaml runs: simulated samples pass through clamp", async () => {
  const loaded = await loadConfigFile(YAML, { registry: builtinRegistry(), env: {} });
  const { logger } = recordingLogger();
  const runtime = await Runtime.create(loaded, { logger, seed: 1 });
  runtime.start();
  try {
    await waitFor(() => runtime.metrics.totals("main").samples_processed >= 4, "4 samples");
  } finally {
    const summary = await runtime.stop();
    assert.ok(summary.samples_processed >= 4);
    assert.equal(summary.tasks_dead_lettered, 0);
  }
});

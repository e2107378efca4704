import assert from "node:assert/strict";
import { BUILTIN_PLUGINS, builtinRegistry } from "../cli/builtins.ts";
import { ConfigError, PermanentError } from "../core/errors.ts";
import { defineHandler, z } from "../core/mod.ts";
import { PluginRegistry } from "../core/registry.ts";
import { silentLogger } from "../core/log.ts";
import { loadConfigText } from "../core/config/load.ts";
import { mismatches, runConfigTests, TEST_START } from "../core/config/tests.ts";

const BASE = `
devices: { d: { type: simulated } }
brokers: { m: { type: memory } }
handlers:
  analyze:
    type: analyze
    config:
      calibrations: [{ metric: pressure, to: bar }]
      ranges: [{ metric: temperature, min: -40, max: 150 }]
  anomaly:
    type: anomaly
    config:
      store: false
      rules: [{ kind: threshold, metric: temperature, above: 90, severity: critical }]
pipelines: { p: { from: [d], via: m, handlers: [analyze, anomaly] } }
`;

async function run(tests: string) {
  const loaded = await loadConfigText(`${BASE}\ntests:\n${tests}`, {
    file: "telemetry.yaml",
    registry: builtinRegistry(),
    env: {},
  });
  return await runConfigTests(loaded, { baseDir: Deno.cwd(), logger: silentLogger });
}

Deno.test("config tests pass samples through the configured handlers and compare the output", async () => {
  const results = await run(`
  - name: kPa become bar
    handlers: [analyze]
    input: [{ device: b, metric: pressure, value: 101.325, unit: kPa }]
    expect: [{ device: b, metric: pressure, value: 1.01325, unit: bar, ts: ${TEST_START} }]
  - name: a boiler over 90 degrees is a critical anomaly
    handlers: [analyze, anomaly]
    input:
      - { device: b, metric: temperature, value: 50 }
      - { device: b, metric: temperature, value: 95 }
    expect_published:
      anomaly: [{ rule: "threshold:temperature", severity: critical, value: 95, device: b }]
  - name: impossible readings are marked bad
    handlers: [analyze]
    input: [{ device: b, metric: temperature, value: 400 }]
    expect: [{ value: 400, quality: bad }]
`);
  assert.deepEqual(results.map((r) => [r.name, r.ok, r.problems]), [
    ["kPa become bar", true, []],
    ["a boiler over 90 degrees is a critical anomaly", true, []],
    ["impossible readings are marked bad", true, []],
  ]);
});

Deno.test("a config test may run a pipeline's whole chain; naming both or neither is an error", async () => {
  const [whole] = await run(`
  - name: the factory chain
    pipeline: p
    input: [{ device: b, metric: temperature, value: 95 }]
    expect_published: { anomaly: [{ rule: "threshold:temperature" }] }
`);
  assert.deepEqual(whole!.problems, []);
  await assert.rejects(
    run(`
  - name: both
    pipeline: p
    handlers: [analyze]
    input: [{ device: b, metric: t, value: 1 }]
`),
    /tests\[0\]: Give either handlers or pipeline/,
  );
  await assert.rejects(
    run(`
  - name: typo
    pipeline: q
    input: [{ device: b, metric: t, value: 1 }]
`),
    /tests\[0\]\.pipeline: Pipeline "q" is not defined/,
  );
});

Deno.test("a failing config test says what differed", async () => {
  const [wrong, count, topic] = await run(`
  - name: wrong value
    handlers: [analyze]
    input: [{ device: b, metric: pressure, value: 200, unit: kPa }]
    expect: [{ value: 1.5, unit: bar }]
  - name: wrong count
    handlers: [analyze]
    input: [{ device: b, metric: pressure, value: 100, unit: kPa }]
    expect: [{ value: 1 }, { value: 1 }]
  - name: nothing published
    handlers: [analyze, anomaly]
    input: [{ device: b, metric: temperature, value: 20 }]
    expect_published: { anomaly: [{ rule: "threshold:temperature" }] }
`);
  assert.equal(wrong!.ok, false);
  assert.deepEqual(wrong!.problems, ["samples[0] value: expected 1.5, got 2"]);
  assert.deepEqual(count!.problems, ["samples: expected 2, got 1"]);
  assert.deepEqual(topic!.problems, ["published anomaly: expected 1, got 0"]);
});

/** A handler that refuses every sample with the configured message. */
const strict = defineHandler({
  name: "strict",
  summary: "Refuses every sample (tests)",
  config: z.strictObject({ message: z.string().describe("Error message") }),
  create: ({ message }) => ({
    handle() {
      throw new PermanentError(message);
    },
  }),
});

Deno.test("expect_error passes when the chain fails with that message, and fails otherwise", async () => {
  const loaded = await loadConfigText(
    `
devices: { d: { type: simulated } }
brokers: { m: { type: memory } }
handlers:
  strict: { type: strict, config: { message: "Unit mV is not supported" } }
pipelines: { p: { from: [d], via: m, handlers: [strict] } }
tests:
  - name: refuses millivolts
    handlers: [strict]
    input: [{ device: b, metric: v, value: 1, unit: mV }]
    expect_error: is not supported
  - name: wrong message
    handlers: [strict]
    input: [{ device: b, metric: v, value: 1 }]
    expect_error: timeout
  - name: unexpected failure
    handlers: [strict]
    input: [{ device: b, metric: v, value: 1 }]
    expect: [{ value: 1 }]
`,
    { file: "telemetry.yaml", registry: PluginRegistry.of([...BUILTIN_PLUGINS, strict]), env: {} },
  );
  const results = await runConfigTests(loaded, { baseDir: Deno.cwd(), logger: silentLogger });
  assert.deepEqual(results.map((r) => r.problems), [
    [],
    ['expected an error containing "timeout", got "Unit mV is not supported"'],
    ["the chain failed: Unit mV is not supported"],
  ]);
});

Deno.test("a config test naming an undefined handler is a positioned config error", async () => {
  await assert.rejects(
    run(`
  - name: typo
    handlers: [analyse]
    input: [{ device: b, metric: t, value: 1 }]
`),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(
        error.message,
        /telemetry\.yaml:\d+:\d+ tests\[0\]\.handlers\[0\]: Handler "analyse" is not defined; did you mean "analyze"\?/,
      );
      return true;
    },
  );
  await assert.rejects(
    run(`
  - name: no input
    handlers: [analyze]
    input: []
`),
    /tests\[0\]\.input/,
  );
});

Deno.test("mismatches() compares listed fields only, numbers within 1e-9 relative", () => {
  assert.deepEqual(
    mismatches({ a: 1, b: { c: "x" } }, { a: 1 + 1e-12, b: { c: "x", d: 2 }, e: 3 }),
    [],
  );
  assert.deepEqual(mismatches({ a: 1 }, { a: 1.001 }), ["a: expected 1, got 1.001"]);
  assert.deepEqual(mismatches({ tags: { site: "n" } }, { tags: { site: "s" } }), [
    'tags.site: expected "n", got "s"',
  ]);
  assert.deepEqual(mismatches({ unit: "bar" }, {}), ['unit: expected "bar", got undefined']);
  assert.deepEqual(mismatches({ quality: null }, {}), [], "null matches an absent field");
});

import assert from "node:assert/strict";
import { collect, ROOT, runTask, spawnTask } from "./_fixtures/cli.ts";
import { waitFor } from "./_fixtures/runtime.ts";

Deno.test("validate exits 0 on the default telemetry.yaml and runs its config tests", async () => {
  const r = await runTask("validate", []);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines[0], "telemetry.yaml: valid");
  assert.match(lines[1]!, /^ {2}ok {3}tests\[0\] pressure is converted from kPa to bar$/);
  assert.match(lines.at(-1)!, /^telemetry\.yaml: \d+ config tests passed, 0 failed$/);
});

Deno.test("validate exits 1 and says what differed when a config test fails", async () => {
  const dir = await Deno.makeTempDir({ prefix: "th_cfgtest_" });
  try {
    const text = (await Deno.readTextFile(`${ROOT}/telemetry.yaml`))
      .replace("value: 1.01325, unit: bar", "value: 1.5, unit: bar");
    await Deno.writeTextFile(`${dir}/telemetry.yaml`, text);
    const r = await runTask("validate", [`${dir}/telemetry.yaml`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stdout,
      /FAIL tests\[0\] pressure is converted from kPa to bar\n\s+samples\[0\] value: expected 1\.5, got 1\.01325/,
    );
    assert.match(r.stdout, /1 config test passed, 1 failed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate exits 2 and prints every positioned problem", async () => {
  const r = await runTask("validate", ["tests/config_cases/several_errors/telemetry.yaml"], {
    env: {},
  });
  assert.equal(r.code, 2);
  const expected = await Deno.readTextFile(`${ROOT}tests/config_cases/several_errors/expected.txt`);
  const lines = r.stderr.trim().split("\n");
  const problems = lines.slice(0, -1).map((l) =>
    l.replace("tests/config_cases/several_errors/telemetry.yaml", "telemetry.yaml")
  );
  // The golden case's registry holds test fixtures; the CLI has the built-ins.
  const knownTypes = (l: string) => l.replace(/Known device types: .*$/, "Known device types: …");
  const want = expected.trim().split("\n").map(knownTypes);
  assert.deepEqual(problems.map(knownTypes), want);
  assert.match(lines.at(-1)!, /^\d+ problems found$/);
});

Deno.test("run refuses an invalid file with the same output as validate", async () => {
  const file = "tests/config_cases/unknown_key_suggestion/telemetry.yaml";
  const validate = await runTask("validate", [file]);
  const run = await runTask("run", ["--config", file]);
  assert.equal(run.code, 2);
  assert.equal(run.stderr, validate.stderr);
});

Deno.test("validate and run refuse split roles with the in-process broker at its type, and say why", async () => {
  const file = "tests/_fixtures/memory_broker/telemetry.yaml";
  const validate = await runTask("validate", ["--role", "hub", file]);
  assert.equal(validate.code, 2, validate.stderr);
  assert.match(
    validate.stderr,
    /^tests\/_fixtures\/memory_broker\/telemetry\.yaml:\d+:\d+ brokers\.local\.type: Role "hub" cannot use broker "local" \(type "memory"\)/m,
  );
  assert.match(validate.stderr, /Split roles need a shared broker: sqlite/);
  const run = await runTask("run", ["--role", "hub", file]);
  assert.equal(run.code, 2);
  assert.equal(run.stderr, validate.stderr, "one check for both");
  // The default file's sqlite broker can be shared.
  assert.equal((await runTask("validate", ["--role", "hub"])).code, 0);
  for (const task of ["validate", "run"]) {
    const env = await runTask(task, [file], { env: { TELEMETRY_ROLE: "processor" } });
    assert.equal(env.code, 2, task);
    assert.match(env.stderr, /Role "processor" cannot use broker "local"/, task);
    const bad = await runTask(task, ["--role", "both"]);
    assert.equal(bad.code, 2, task);
    assert.match(bad.stderr, /Unknown role "both"; expected one of "all", "hub", "processor"/);
  }
});

for (const name of ["no_pipelines", "admin_port_out_of_range", "duration_beyond_timer"]) {
  Deno.test(`validate and run refuse the same way a file with ${name.replaceAll("_", " ")}`, async () => {
    const file = `tests/config_cases/${name}/telemetry.yaml`;
    const expected = await Deno.readTextFile(`${ROOT}/tests/config_cases/${name}/expected.txt`);
    const validate = await runTask("validate", [file], { env: {} });
    assert.equal(validate.code, 2, validate.stderr);
    const problems = validate.stderr.trim().split("\n").slice(0, -1);
    assert.deepEqual(
      problems,
      expected.trim().split("\n").map((l) => l.replace(/^telemetry\.yaml/, file)),
    );
    const run = await runTask("run", ["--config", file]);
    assert.equal(run.code, 2);
    assert.equal(run.stderr, validate.stderr);
  });
}

Deno.test("run refuses a --for longer than a timer can wait", async () => {
  const r = await runTask("run", ["--for", "30d"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Invalid --for "30d"; must be at most 2147483647ms \(about 24\.8 days\)/);
});

Deno.test("run names the plugin module whose create() throws", async () => {
  const r = await runTask("run", ["--config", "tests/_fixtures/throwing_plugin/telemetry.yaml"]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /Cannot start handler "boom" \(plugin "explodes" from "\.\/plugin\.ts"\): Cannot reach the calibration service/,
  );
});

Deno.test("run stops before starting anything when the admin port is taken", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const listen = `127.0.0.1:${taken.addr.port}`;
    const r = await runTask("run", ["--for", "10s"], {
      env: { TELEMETRY_ADMIN_LISTEN: listen, TELEMETRY_LOG_LEVEL: "debug" },
    });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`Cannot serve the admin API on "${listen}": .*\\(change admin\\.listen`),
    );
    assert.doesNotMatch(r.stderr, /"msg":"Started"/, "no device read, no task taken");
  } finally {
    taken.close();
  }
});

Deno.test("run on the default config stops on SIGTERM with exit 0 and a summary", async () => {
  const child = await spawnTask("run", [], {
    env: { TELEMETRY_LOG_LEVEL: "debug", TELEMETRY_ADMIN_LISTEN: "127.0.0.1:0" },
  });
  const stdout = collect(child.stdout);
  const stderr = collect(child.stderr);
  try {
    await waitFor(
      () => stderr.text().includes('"msg":"Admin API listening"'),
      "the admin API",
      30_000,
    );
    // A real HTTP client against the running process.
    const address = stderr.text().match(/"msg":"Admin API listening","address":"([^"]+)"/)![1];
    const health = await fetch(`http://${address}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    // Wait for samples to flow, by the process's own counters.
    const ingested =
      /^telemetry_samples_ingested_total\{pipeline="factory",device="boiler_1"\} [1-9]/m;
    let metrics = "";
    await waitFor(
      async () => {
        metrics = await (await fetch(`http://${address}/metrics`)).text();
        return ingested.test(metrics);
      },
      "samples counted in /metrics",
      30_000,
    );
    assert.match(metrics, /^process_cpu_seconds_total /m);
    assert.match(metrics, /^telemetry_build_info\{version="\d+\.\d+\.\d+",deno="[\d.]+"\} 1$/m);
  } finally {
    child.kill("SIGTERM");
  }
  const status = await child.status;
  const out = await stdout.done;
  const err = await stderr.done;
  assert.equal(status.code, 0, err);
  const match = out.match(
    /^Stopped after [\d.]+s: (\d+) samples read, (\d+) tasks completed, (\d+) retried, (\d+) dead-lettered, (\d+) samples dropped$/m,
  );
  assert.ok(match, `no summary line in ${JSON.stringify(out)}`);
  const [, read, completed, retried, dead, dropped] = match.map(Number);
  assert.ok(read! > 0, "samples read");
  assert.ok(completed! > 0, "tasks completed");
  assert.equal(retried, 0);
  assert.equal(dead, 0);
  assert.equal(dropped, 0);
  // Not a terminal: logs are JSON lines.
  for (const line of err.trim().split("\n")) JSON.parse(line);
});

Deno.test("plugins --json lists every built-in with its fields", async () => {
  const r = await runTask("plugins", ["--json"]);
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout) as Array<
    { kind: string; name: string; fields: Array<{ path: string; description: string }> }
  >;
  const names = list.map((p) => `${p.kind}:${p.name}`);
  for (const n of ["device:simulated", "broker:memory", "handler:digest", "handler:discard"]) {
    assert.ok(names.includes(n), `${n} listed`);
  }
  const simulated = list.find((p) => p.name === "simulated")!;
  const rate = simulated.fields.find((f) => f.path === "rate");
  assert.ok(rate?.description, "rate is described");
  const text = await runTask("plugins", []);
  assert.match(text.stdout, /^device simulated@[\d.]+ — /m);
});

Deno.test("schema prints the JSON Schema of telemetry.yaml with plugin blocks", async () => {
  const r = await runTask("schema", []);
  assert.equal(r.code, 0, r.stderr);
  const schema = JSON.parse(r.stdout);
  assert.match(schema.$schema, /json-schema\.org/);
  const text = JSON.stringify(schema);
  assert.ok(text.includes("Samples per second of each metric"), "simulated's rate described");
});

Deno.test("an unknown option exits 2 with usage", async () => {
  const r = await runTask("run", ["--nope"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Usage: telemetryhub/);
});

Deno.test("validate and run position a plugin module's syntax error at its file, line and column", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/broken.ts`,
      'import { defineHandler, z } from "' + new URL("../core/mod.ts", import.meta.url).href +
        '";\nexport default defineHandler({\n  name: "broken",\n  summary: "x"\n  config: ' +
        "z.strictObject({}),\n  create: () => ({ handle() {} }),\n});\n",
    );
    await Deno.writeTextFile(`${dir}/telemetry.yaml`, "plugins: [./broken.ts]\n");
    for (const command of ["validate", "run"]) {
      const args = command === "run"
        ? ["--config", `${dir}/telemetry.yaml`]
        : [`${dir}/telemetry.yaml`];
      const r = await runTask(command, args, { env: {} });
      assert.equal(r.code, 2, `${command}: ${r.stderr}`);
      // Line 5, column 3 of broken.ts: `config` where a comma was expected.
      assert.match(
        r.stderr,
        /telemetry\.yaml:1:11 plugins\[0\]: Cannot load plugin module "\.\/broken\.ts": \S*broken\.ts:5:3: SyntaxError: Expected ',', got 'config'/,
        command,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

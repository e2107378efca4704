import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { ConfigError, formatProblem } from "../errors.ts";
import { fixtureRegistry } from "../../tests/config_cases/_fixtures.ts";
import { formatPath, loadConfigFile, loadConfigText } from "./load.ts";

const MINIMAL = `
devices:
  boiler:
    type: simulated
brokers:
  queue:
    type: memory
pipelines:
  main:
    from: [boiler]
    via: queue
`;

async function problems(text: string, env: Record<string, string> = {}): Promise<string[]> {
  try {
    await loadConfigText(text, { file: "t.yaml", env, registry: fixtureRegistry() });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map(formatProblem);
    throw error;
  }
  return [];
}

Deno.test("formatPath() dots keys, brackets indices and quotes keys that are not names", () => {
  assert.equal(
    formatPath(["pipelines", "main", "batch", "max_wait"]),
    "pipelines.main.batch.max_wait",
  );
  assert.equal(formatPath(["pipelines", "main", "from", 1]), "pipelines.main.from[1]");
  assert.equal(formatPath(["routes", "telemetry.alert", 0]), 'routes["telemetry.alert"][0]');
  assert.equal(formatPath([]), "");
});

Deno.test("loadConfigText() applies core defaults and each plugin's schema output", async () => {
  const loaded = await loadConfigText(MINIMAL, {
    file: "<input>",
    env: {},
    registry: fixtureRegistry(),
  });
  const { config } = loaded;
  assert.equal(config.file, "<input>");
  assert.equal(config.role, "all");
  assert.equal(config.pipelines.main?.workers, 2);
  assert.equal(config.pipelines.main?.batch.max_wait, 50);
  assert.equal(config.shutdown.grace, 10_000);
  assert.deepEqual(config.devices.boiler?.config, { rate: 1, seed: 1, metrics: ["temperature"] });
  assert.deepEqual(config.brokers.queue?.config, {});
  assert.deepEqual(loaded.warnings, []);
});

Deno.test("loadConfigText() turns a plain ${VAR:-4} into a number and a quoted one into a string", async () => {
  const text = MINIMAL + '    workers: ${WORKERS:-4}\n    task_type: "${PREFETCH:-7}"\n';
  const { config } = await loadConfigText(text, {
    file: "<input>",
    env: {},
    registry: fixtureRegistry(),
  });
  assert.equal(config.pipelines.main?.workers, 4);
  assert.equal(config.pipelines.main?.task_type, "7");
});

Deno.test("loadConfigText() reports every problem at once, sorted by line and column", async () => {
  const text = `pipelines:
  main:
    from: [boilr]
    via: queue
    workers: two
role: both
`;
  assert.deepEqual(await problems(text), [
    't.yaml:3:12 pipelines.main.from[0]: Device "boilr" is not defined; no devices are defined',
    't.yaml:4:10 pipelines.main.via: Broker "queue" is not defined; no brokers are defined',
    't.yaml:5:14 pipelines.main.workers: Expected an integer, got "two"',
    't.yaml:6:7 role: Expected one of "all", "hub", "processor", got "both"',
  ]);
});

Deno.test("loadConfigText() reports an unset variable once, without a type error for the same value", async () => {
  assert.deepEqual(await problems(MINIMAL + "    workers: ${WORKERS}\n"), [
    't.yaml:12:14 pipelines.main.workers: Environment variable "WORKERS" is not set',
  ]);
});

Deno.test("loadConfigText() does not interpolate keys", async () => {
  assert.deepEqual(await problems(MINIMAL + "    ${KEY}: 1\n"), [
    't.yaml:12:5 pipelines.main["${KEY}"]: Unknown key "${KEY}"; valid keys are ' +
    '"from", "via", "task_type", "handlers", "routes", "priority", "batch", "hub_queue", ' +
    '"workers", "prefetch", "retry"',
  ]);
});

Deno.test("loadConfigText() reports every YAML syntax error on one line each", async () => {
  const found = await problems("a: [1, 2\nb: 'open\n");
  assert.ok(found.length >= 2, found.join("\n"));
  for (const line of found) {
    assert.match(line, /^t\.yaml:\d+:\d+ \S/);
    assert.ok(!line.includes("\n"));
  }
  assert.deepEqual(await problems("a: 1\na: 2\n"), ["t.yaml:2:1 Map keys must be unique"]);
});

Deno.test("loadConfigText() refuses an empty file and a file that is not a mapping", async () => {
  assert.match((await problems(""))[0]!, /^t\.yaml:1:1 Configuration is empty/);
  assert.match((await problems("# only a comment\n"))[0]!, /Configuration is empty/);
  assert.deepEqual(await problems("just text\n"), [
    't.yaml:1:1 Expected a mapping at the top level, got the value "just text"',
  ]);
});

Deno.test("loadConfigText() collects secrets and redacts them", async () => {
  const text =
    MINIMAL.replace("type: memory", "type: redis\n    config:\n      url: ${REDIS_URL}") +
    `admin:
  token: \${TELEMETRY_ADMIN_TOKEN}
handlers:
  notify:
    type: webhook
    config:
      url: https://hooks.example.com/x?sig=abc
      token: literal-token
`;
  const env = { REDIS_URL: "redis://app:pw-123@cache:6379", TELEMETRY_ADMIN_TOKEN: "adm1n" };
  const loaded = await loadConfigText(text, { file: "<input>", env, registry: fixtureRegistry() });
  assert.deepEqual([...loaded.secrets].sort(), ["adm1n", "literal-token", "pw-123"]);
  const redacted = loaded.redacted as {
    admin: { token: string };
    brokers: { queue: { config: { url: string } } };
    handlers: { notify: { config: { token: string; url: string } } };
  };
  assert.equal(redacted.admin.token, "***");
  assert.equal(redacted.brokers.queue.config.url, "redis://app:***@cache:6379");
  assert.equal(redacted.handlers.notify.config.token, "***");
  // A signature in a query string is a credential too.
  assert.equal(redacted.handlers.notify.config.url, "https://hooks.example.com/x?sig=***");
  // The config itself keeps the real values.
  assert.equal(loaded.config.admin.token, "adm1n");
  assert.ok(!JSON.stringify(loaded.redacted).includes("pw-123"));
});

Deno.test("loadConfigText() warns about a device no pipeline reads", async () => {
  const text = MINIMAL.replace("brokers:", "  spare:\n    type: simulated\nbrokers:");
  const loaded = await loadConfigText(text, {
    file: "t.yaml",
    env: {},
    registry: fixtureRegistry(),
  });
  assert.deepEqual(loaded.warnings.map(formatProblem), [
    't.yaml:5:3 devices.spare: Device "spare" is not used by any pipeline',
  ]);
});

Deno.test("loadConfigText() registers third-party plugins in a clone of the registry", async () => {
  const registry = fixtureRegistry();
  const baseDir = fromFileUrl(
    new URL("../../tests/config_cases/valid_third_party_plugin/", import.meta.url),
  );
  const text = MINIMAL + "    handlers: [check]\nplugins: [./threshold.ts]\n" +
    "handlers:\n  check:\n    type: threshold\n    config: {limit: 3}\n";
  const loaded = await loadConfigText(text, { file: "t.yaml", env: {}, registry, baseDir });
  assert.ok(loaded.registry.get("handler", "threshold"));
  assert.equal(registry.get("handler", "threshold"), undefined);
  assert.deepEqual(loaded.config.handlers.check?.config, { limit: 3 });
});

Deno.test("loadConfigText() reports a plugin module that cannot be imported at its entry", async () => {
  const found = await problems(MINIMAL + "plugins:\n  - ./does_not_exist.ts\n");
  assert.equal(found.length, 1);
  assert.match(
    found[0]!,
    /^t\.yaml:13:5 plugins\[0\]: Cannot load plugin module "\.\/does_not_exist\.ts": .*does_not_exist\.ts"$/,
  );
});

Deno.test("loadConfigText() with loadPlugins: false imports nothing and reports modules not already loaded", async () => {
  const text = MINIMAL + "    handlers: [check]\nplugins: [./threshold.ts]\n" +
    "handlers:\n  check:\n    type: threshold\n    config: {limit: 3}\n";
  await assert.rejects(
    loadConfigText(text, {
      file: "t.yaml",
      env: {},
      registry: fixtureRegistry(),
      loadPlugins: false,
    }),
    (error: ConfigError) => {
      const texts = error.problems.map(formatProblem);
      assert.ok(
        texts.some((t) => /plugins\[0\]: Plugin module "\.\/threshold\.ts" is not loaded/.test(t)),
        texts.join("\n"),
      );
      assert.ok(texts.some((t) => /Unknown handler type "threshold"/.test(t)), texts.join("\n"));
      return true;
    },
  );
});

Deno.test("loadConfigText() with loadPlugins: false accepts a module the registry already loaded, by its spec", async () => {
  const baseDir = fromFileUrl(
    new URL("../../tests/config_cases/valid_third_party_plugin/", import.meta.url),
  );
  const text = MINIMAL + "    handlers: [check]\nplugins: [./threshold.ts]\n" +
    "handlers:\n  check:\n    type: threshold\n    config: {limit: 3}\n";
  // As a running process has it: the registry its own configuration produced.
  const running = await loadConfigText(text, {
    file: "t.yaml",
    env: {},
    registry: fixtureRegistry(),
    baseDir,
  });
  const checked = await loadConfigText(text.replace("limit: 3", "limit: 4"), {
    file: "<input>",
    env: {},
    registry: running.registry,
    baseDir,
    loadPlugins: false,
  });
  assert.deepEqual(checked.config.handlers.check?.config, { limit: 4 });
});

Deno.test("loadConfigText() reads Deno.env when no env is given", async () => {
  const { config } = await loadConfigText(
    MINIMAL + "    task_type: ${HOME:-home}-x\n",
    { file: "<input>", registry: fixtureRegistry() },
  );
  assert.equal(config.pipelines.main?.task_type, `${Deno.env.get("HOME") || "home"}-x`);
});

Deno.test("loadConfigFile() reports an unreadable file as one problem at 0:0", async () => {
  await assert.rejects(
    loadConfigFile("/nonexistent/telemetry.yaml", { registry: fixtureRegistry(), env: {} }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems.map(formatProblem), [
        '/nonexistent/telemetry.yaml:0:0 Cannot read configuration file "/nonexistent/telemetry.yaml": no such file',
      ]);
      return true;
    },
  );
});

Deno.test("loadConfigFile() gives the absolute path in config.file and resolves plugins beside the file", async () => {
  const path = fromFileUrl(
    new URL("../../tests/config_cases/valid_third_party_plugin/telemetry.yaml", import.meta.url),
  );
  const loaded = await loadConfigFile(path, {
    file: "telemetry.yaml",
    registry: fixtureRegistry(),
    env: {},
  });
  assert.equal(loaded.config.file, path);
  assert.ok(loaded.registry.get("handler", "threshold"));
});

Deno.test("loadConfigText() still reports an unknown key whose value has an unset variable", async () => {
  assert.deepEqual(await problems(MINIMAL + "    workrs: ${WORKERS}\n"), [
    't.yaml:12:5 pipelines.main.workrs: Unknown key "workrs"; did you mean "workers"?',
    't.yaml:12:13 pipelines.main.workrs: Environment variable "WORKERS" is not set',
  ]);
});

Deno.test("loadConfigText() reports an alias to an undefined anchor", async () => {
  assert.deepEqual(await problems(MINIMAL + "    retry: *defaults\n"), [
    't.yaml:12:12 pipelines.main.retry: Unknown alias "*defaults"; define the anchor "&defaults" before it',
  ]);
});

Deno.test("loadConfigText() reads YAML merge keys", async () => {
  const text = MINIMAL.replace("brokers:", "  pump:\n    <<: *boiler\nbrokers:")
    .replace("  boiler:\n", "  boiler: &boiler\n").replace(
      "from: [boiler]",
      "from: [boiler, pump]",
    );
  const { config } = await loadConfigText(text, {
    file: "t.yaml",
    env: {},
    registry: fixtureRegistry(),
  });
  assert.equal(config.devices.pump?.type, "simulated");
});

Deno.test("loadConfigText() checks the brokers against the role that overrides the file's", async () => {
  const options = { file: "t.yaml", env: {}, registry: fixtureRegistry() };
  // role: all in the file, but the process will be a processor (--role, TELEMETRY_ROLE).
  await assert.rejects(
    loadConfigText(MINIMAL, { ...options, role: "processor" }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems.map(formatProblem), [
        't.yaml:7:11 brokers.queue.type: Role "processor" cannot use broker "queue" (type ' +
        '"memory"): it lives inside one process, so a separate hub and processor would never ' +
        "see each other's tasks. Split roles need a shared broker: sqlite (processes on one " +
        'machine) or Redis; use role "all" with this one',
      ]);
      return true;
    },
  );
  await loadConfigText(MINIMAL, { ...options, role: "all" });
  await loadConfigText(MINIMAL.replace("type: memory", "type: redis"), {
    ...options,
    role: "hub",
  });
});

Deno.test("loadConfigText() refuses timer durations of 2^31 ms or more and allows 2^31 - 1", async () => {
  const at = (grace: string) => problems(`shutdown: { grace: ${grace} }\n${MINIMAL}`);
  assert.deepEqual(await at("2147483647"), []);
  assert.deepEqual(await at("24d20h31m23.647s"), []);
  assert.deepEqual(await at("2147483648"), [
    "t.yaml:1:20 shutdown.grace: Must be at most 2147483647ms (about 24.8 days), the longest " +
    "a timer can wait, got 2147483648",
  ]);
});

Deno.test("loadConfigText() refuses an admin port above 65535 and takes 65535 and 0", async () => {
  const at = (listen: string) => problems(`admin: { listen: "${listen}" }\n${MINIMAL}`);
  assert.deepEqual(await at("127.0.0.1:65535"), []);
  assert.deepEqual(await at("[::1]:0"), []);
  assert.deepEqual(await at("localhost:65536"), [
    "t.yaml:1:18 admin.listen: Port 65536 is out of range; expected 0 to 65535 (0 picks a free one)",
  ]);
});

Deno.test("a problem about a value from the environment names the variable, never its value", async () => {
  const env = {
    DATABASE_URL: "postgres://app:hunter2pw@db:5432/x",
    HOME: "/home/secretuser",
  };
  const error = await loadConfigText(
    MINIMAL + 'role: ${DATABASE_URL}\nlog: { level: "${HOME}/x" }\n',
    { file: "t.yaml", env, registry: fixtureRegistry() },
  ).then(() => undefined, (e: ConfigError) => e);
  assert.ok(error instanceof ConfigError);
  const text = error.problems.map(formatProblem).join("\n");
  assert.match(
    text,
    /role: Expected one of "all", "hub", "processor", got the value of \$\{DATABASE_URL\}/,
  );
  assert.match(text, /log\.level: .*got "\$\{HOME\}\/x"/);
  assert.ok(!text.includes("hunter2pw") && !text.includes("secretuser"), text);
  const numeric = await problems(MINIMAL + "    workers: ${WORKERS}\n", { WORKERS: "0" });
  assert.deepEqual(numeric.map((p) => p.replace(/^t\.yaml:\d+:\d+ /, "")), [
    "pipelines.main.workers: Must be at least 1, got the value of ${WORKERS}",
  ]);
});

Deno.test("an admin API beyond loopback without a read or admin token is a problem at admin.listen", async () => {
  const found = await problems(
    MINIMAL + 'admin: { listen: "0.0.0.0:8080", ingest_tokens: [k1] }\n',
  );
  assert.equal(found.length, 1);
  assert.match(
    found[0]!,
    /admin\.listen: The admin API would listen on "0\.0\.0\.0:8080", beyond loopback, without a token.*admin\.token/,
  );
  await loadConfigText(MINIMAL + 'admin: { listen: "0.0.0.0:8080", token: t0k3n }\n', {
    file: "t.yaml",
    env: {},
    registry: fixtureRegistry(),
  });
  await loadConfigText(MINIMAL + 'admin: { listen: "0.0.0.0:8080", enabled: false }\n', {
    file: "t.yaml",
    env: {},
    registry: fixtureRegistry(),
  });
});

Deno.test("loadConfigText() takes threads: auto or 1 to 256 and names a bad value's line and column", async () => {
  const { config } = await loadConfigText(MINIMAL, {
    file: "<input>",
    env: {},
    registry: fixtureRegistry(),
  });
  assert.equal(config.threads, "auto");
  assert.deepEqual(await problems(`threads: 4\n${MINIMAL}`), []);
  assert.deepEqual(await problems(`threads: \${THREADS:-2}\n${MINIMAL}`), []);
  assert.deepEqual(await problems(`threads: 0\n${MINIMAL}`), [
    "t.yaml:1:10 threads: Must be at least 1, got 0",
  ]);
  assert.deepEqual(await problems(`threads: 257\n${MINIMAL}`), [
    "t.yaml:1:10 threads: Must be at most 256, got 257",
  ]);
  for (const bad of ["1.5", "many", "-1"]) {
    const [problem, ...rest] = await problems(`threads: ${bad}\n${MINIMAL}`);
    assert.deepEqual(rest, []);
    assert.match(
      problem!,
      /^t\.yaml:1:10 threads: (Expected "auto" or a whole number of threads from 1 to 256|Must be at least 1)/,
      String(problem),
    );
  }
});

Deno.test("loadConfigText() warns, at its via, about a pipeline an explicit threads: cannot spread", async () => {
  const { warnings } = await loadConfigText(`threads: 4\n${MINIMAL}`, {
    file: "t.yaml",
    env: {},
    registry: fixtureRegistry(),
  });
  assert.deepEqual(warnings.map(formatProblem), [
    't.yaml:12:10 pipelines.main.via: threads: 4 does not spread pipeline "main": its broker ' +
    '"queue" (type "memory") lives in the main isolate, so its handlers run there only; a ' +
    "sqlite or redis broker can be shared by every thread",
  ]);
  const auto = await loadConfigText(MINIMAL, {
    file: "t.yaml",
    env: {},
    registry: fixtureRegistry(),
  });
  assert.deepEqual(auto.warnings, [], "threads: auto says nothing");
});

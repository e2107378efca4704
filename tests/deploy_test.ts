import assert from "node:assert/strict";
import { parse } from "yaml";
import { ROOT, taskArgs } from "./_fixtures/cli.ts";
import { adminFixture } from "./_fixtures/admin.ts";
import { needs, run } from "./_fixtures/tools.ts";
import { dashboards, expandSqlMacros, promqlMetrics, queries } from "./_fixtures/grafana.ts";
import { waitFor } from "./_fixtures/runtime.ts";

Deno.test({
  name: "the Prometheus alert rules and scrape config in deploy/ are valid as shipped (promtool)",
  ignore: await needs("promtool"),
  async fn() {
    const rules = await run("promtool", ["check", "rules", `${ROOT}deploy/prometheus/alerts.yml`]);
    assert.equal(rules.code, 0, rules.output);
    // The config names its rules file relative to itself, so it checks where it lies.
    const checked = await run("promtool", [
      "check",
      "config",
      `${ROOT}deploy/prometheus/prometheus.yml`,
    ]);
    assert.equal(checked.code, 0, checked.output);
    assert.match(checked.output, /1 rule files found/);
  },
});

Deno.test({
  name: "the Alertmanager config in deploy/ is valid (amtool)",
  ignore: await needs("amtool"),
  async fn() {
    const checked = await run("amtool", [
      "check-config",
      `${ROOT}deploy/alertmanager/alertmanager.yml`,
    ]);
    assert.equal(checked.code, 0, checked.output);
    assert.match(checked.output, /SUCCESS/);
  },
});

Deno.test({
  name: "promtool accepts a real /metrics exposition",
  ignore: await needs("promtool"),
  async fn() {
    const { runtime, app } = await adminFixture(`
devices: { boiler: { type: fixed, config: { count: 50, batch: 10 } } }
brokers: { mem: { type: memory } }
handlers: { rec: { type: record, config: { key: promtool } } }
pipelines: { main: { from: [boiler], via: mem, handlers: [rec], batch: { max_wait: 1ms } } }
`);
    runtime.metrics.enableDefaultMetrics();
    runtime.start();
    await waitFor(() => runtime.metrics.totals("main").tasks_completed > 0, "a task");
    const text = await (await app.request("/metrics")).text();
    await runtime.stop();
    const checked = await run("promtool", ["check", "metrics"], text);
    // Exit 1 is a format error; 3 is lint advice. prom-client's own nodejs_*
    // gauges end in _total (lint advice we cannot change); ours must be clean.
    assert.ok(checked.code === 0 || checked.code === 3, checked.output);
    assert.doesNotMatch(checked.output, /error/i);
    assert.doesNotMatch(checked.output, /telemetry_/, "our metric names pass promtool's lint");
  },
});

Deno.test("Grafana's provisioning is complete: datasources with ids and no literal secret, every dashboard query on one of them", async () => {
  const dir = `${ROOT}deploy/grafana/provisioning`;
  const uids = new Map<string, string>();
  for (const file of ["prometheus.yml", "postgres.yml"]) {
    const text = await Deno.readTextFile(`${dir}/datasources/${file}`);
    const doc = parse(text);
    assert.equal(doc.apiVersion, 1, file);
    for (const ds of doc.datasources) {
      assert.ok(ds.name && ds.type && ds.uid && ds.url, `${file}: ${JSON.stringify(ds)}`);
      uids.set(ds.uid, ds.type);
      for (const secret of Object.values(ds.secureJsonData ?? {})) {
        assert.match(String(secret), /^\$[A-Z_]+$/, `${file}: secrets come from the environment`);
      }
    }
  }
  assert.deepEqual(
    [...uids].sort(),
    [["telemetry-postgres", "postgres"], ["telemetry-prometheus", "prometheus"]],
  );
  const providers = parse(await Deno.readTextFile(`${dir}/dashboards/telemetryhub.yml`));
  const compose = await Deno.readTextFile(`${ROOT}compose.yaml`);
  assert.ok(
    compose.includes(`./deploy/grafana/dashboards:${providers.providers[0].options.path}:ro`),
    "compose mounts the dashboards where the provider reads them",
  );

  const all = await dashboards();
  assert.deepEqual(all.map((d) => d.file), ["telemetryhub-data.json", "telemetryhub.json"]);
  assert.equal(new Set(all.map((d) => d.json.uid)).size, all.length, "dashboard uids are unique");
  const documented = await Deno.readTextFile(`${ROOT}docs/metrics.md`);
  for (const dashboard of all) {
    const variables = new Set(
      (dashboard.json.templating?.list ?? []).map((v: { name: string }) => `\${${v.name}}`),
    );
    for (const q of queries(dashboard)) {
      const at = `${q.dashboard} ${q.where}`;
      const uid = q.datasource?.uid ?? "";
      assert.ok(uids.has(uid) || variables.has(uid), `${at}: datasource "${uid}" is provisioned`);
      const kind = uids.get(uid) ?? "prometheus"; // the ${datasource} variable picks Prometheus
      if (kind === "prometheus") {
        assert.ok(q.expr, `${at} has PromQL`);
        for (const name of promqlMetrics(q.expr!).filter((n) => n.startsWith("telemetry_"))) {
          const base = name.replace(/_(bucket|sum|count)$/, "");
          assert.ok(documented.includes(`\`${base}\``), `${at}: ${base} is a documented metric`);
        }
      } else {
        assert.ok(q.rawSql, `${at} has SQL`);
        // Every Grafana variable the SQL names is one the dashboard defines.
        expandSqlMacros(q.rawSql!, { device: ["d"], metric: ["m"], window: [60_000] });
      }
    }
  }
});

Deno.test("the fleet dashboard shows the broker's queues once per broker, not summed over processes", async () => {
  const fleet = (await dashboards()).find((d) => d.file === "telemetryhub.json")!;
  const depth = queries(fleet).filter((q) => q.expr?.includes("telemetry_queue_depth"));
  assert.ok(depth.length > 0);
  for (const { expr } of depth) {
    assert.ok(
      /^max by \(broker, queue\) \(telemetry_queue_depth\{queue!="hub"\}\)$/.test(expr!) ||
        /^sum by \(pipeline\) \(telemetry_queue_depth\{queue="hub"\}\)$/.test(expr!),
      String(expr),
    );
  }
});

Deno.test("the fleet configuration in deploy/ is valid once its secret is given", async () => {
  const { runTask } = await import("./_fixtures/cli.ts");
  const ok = await runTask("validate", ["deploy/telemetry.fleet.yaml"], {
    env: { TELEMETRY_ADMIN_TOKEN: "t0ken" },
  });
  assert.equal(ok.code, 0, ok.stderr);
  const missing = await runTask("validate", ["deploy/telemetry.fleet.yaml"]);
  assert.equal(missing.code, 2);
  assert.match(
    missing.stderr,
    /admin\.token: Environment variable "TELEMETRY_ADMIN_TOKEN" is not set/,
  );
});

/** The JSON array of a Dockerfile instruction (`ENTRYPOINT [...]`), continuation lines joined. */
async function dockerfileArray(instruction: string): Promise<string[]> {
  const text = (await Deno.readTextFile(`${ROOT}deploy/Dockerfile`)).replace(/\\\n/g, " ");
  const line = text.split("\n").find((l) => l.startsWith(`${instruction} `));
  assert.ok(line, `deploy/Dockerfile has ${instruction}`);
  return JSON.parse(line.slice(line.indexOf("[")));
}

Deno.test("the image runs the program with exactly the permissions of `deno task run`", async () => {
  const entrypoint = await dockerfileArray("ENTRYPOINT");
  // --cached-only only forbids downloads: everything is in the image's read-only DENO_DIR.
  assert.deepEqual(
    ["deno", ...(await taskArgs("run"))],
    entrypoint.filter((a) => a !== "--cached-only"),
  );
});

Deno.test("the image's health check is the one compose.yaml runs", async () => {
  const healthcheck = await dockerfileArray("HEALTHCHECK --interval=10s --timeout=5s");
  const compose = parse(await Deno.readTextFile(`${ROOT}compose.yaml`));
  assert.deepEqual(compose["x-telemetry"].healthcheck.test, ["CMD", ...healthcheck]);
});

interface ComposeService {
  image?: string;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string>;
  read_only?: boolean;
}

Deno.test("compose.yaml is the design's fleet: every service healthy before its dependents", async () => {
  const text = await Deno.readTextFile(`${ROOT}compose.yaml`);
  // Compose applies YAML merge keys (`<<: *telemetry`).
  const services: Record<string, ComposeService> = parse(text, { merge: true }).services;
  assert.deepEqual(Object.keys(services).sort(), [
    "alertmanager",
    "grafana",
    "hub",
    "postgres",
    "processor-1",
    "processor-2",
    "prometheus",
    "redis",
  ]);
  for (const [name, service] of Object.entries(services)) {
    assert.ok(service.healthcheck?.test.length, `${name} has a health check`);
    for (const [dep, { condition }] of Object.entries(service.depends_on ?? {})) {
      assert.equal(condition, "service_healthy", `${name} waits for ${dep} to be healthy`);
      assert.ok(services[dep], `${name} depends on a service of the file (${dep})`);
    }
  }
  for (const name of ["hub", "processor-1", "processor-2"]) {
    assert.equal(services[name]!.read_only, true, `${name} runs read-only`);
  }
  assert.match(JSON.stringify(services.redis), /"--appendonly","yes"/);
  assert.match(JSON.stringify(services.redis), /"--maxmemory-policy","noeviction"/);
  assert.equal(services.redis!.image, "redis:7");
  assert.equal(services.postgres!.image, "postgres:15");
  // No secret has a default: each is ${VAR:?message}.
  for (const [, name, op] of text.matchAll(/\$\{([A-Z_]+)(:[?-])?/g)) {
    if (/TOKEN|PASSWORD|SECRET/.test(name!)) assert.equal(op, ":?", `${name} has no default`);
  }
  const fleet = parse(await Deno.readTextFile(`${ROOT}deploy/telemetry.fleet.yaml`));
  assert.equal(fleet.pipelines.factory.workers, 8, "8 workers per processor");
});

Deno.test({
  name: "docker-compose refuses compose.yaml without its secrets and names the missing one",
  ignore: await needs("docker-compose"),
  async fn() {
    const out = await new Deno.Command("docker-compose", {
      args: ["-f", `${ROOT}compose.yaml`, "config", "--quiet"],
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "",
        POSTGRES_PASSWORD: "p",
        GRAFANA_ADMIN_PASSWORD: "g",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.success, false);
    assert.match(new TextDecoder().decode(out.stderr), /set TELEMETRY_ADMIN_TOKEN/);
    const ok = await new Deno.Command("docker-compose", {
      args: ["-f", `${ROOT}compose.yaml`, "config", "--quiet"],
      env: { TELEMETRY_ADMIN_TOKEN: "t", POSTGRES_PASSWORD: "p", GRAFANA_ADMIN_PASSWORD: "g" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(ok.success, true, new TextDecoder().decode(ok.stderr));
  },
});

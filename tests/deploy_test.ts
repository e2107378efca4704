import assert from "node:assert/strict";
import { requireService } from "./_fixtures/services.ts";
import { ROOT } from "./_fixtures/cli.ts";
import { adminFixture } from "./_fixtures/admin.ts";
import { freePort, needs, run, spawnListening } from "./_fixtures/tools.ts";
import { waitFor } from "./_fixtures/runtime.ts";

Deno.test({
  name: "the Prometheus alert rules and scrape config in deploy/ are valid (promtool)",
  ignore: await needs("promtool"),
  async fn() {
    const rules = await run("promtool", ["check", "rules", `${ROOT}deploy/prometheus/alerts.yml`]);
    assert.equal(rules.code, 0, rules.output);
    // The config names the rules file by its in-container path; check a copy beside it.
    const dir = await Deno.makeTempDir();
    const config = (await Deno.readTextFile(`${ROOT}deploy/prometheus/prometheus.yml`))
      .replace("/etc/prometheus/alerts.yml", `${dir}/alerts.yml`);
    await Deno.writeTextFile(`${dir}/prometheus.yml`, config);
    await Deno.copyFile(`${ROOT}deploy/prometheus/alerts.yml`, `${dir}/alerts.yml`);
    const checked = await run("promtool", ["check", "config", `${dir}/prometheus.yml`]);
    await Deno.remove(dir, { recursive: true });
    assert.equal(checked.code, 0, checked.output);
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
  name: "mosquitto starts with the Mosquitto config in deploy/ and takes a connection",
  // Debian puts mosquitto in /usr/sbin, often not on PATH; CI installs it (.ci/run).
  ignore: !await requireService("/usr/sbin/mosquitto", () => Deno.stat("/usr/sbin/mosquitto")),
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const port = freePort();
    // The compose file's config, on a free port instead of 1883.
    const conf = (await Deno.readTextFile(`${ROOT}deploy/mosquitto/mosquitto.conf`))
      .replace("listener 1883", `listener ${port} 127.0.0.1`);
    await Deno.writeTextFile(`${dir}/mosquitto.conf`, conf);
    try {
      // Resolves once mosquitto takes connections on that port.
      const child = await spawnListening(
        "/usr/sbin/mosquitto",
        ["-c", `${dir}/mosquitto.conf`],
        port,
        10_000,
      );
      child.kill("SIGTERM");
      await child.status;
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
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

Deno.test("the Grafana dashboard is valid JSON whose queries name exported metrics", async () => {
  const dashboard = JSON.parse(
    await Deno.readTextFile(`${ROOT}deploy/grafana/dashboards/telemetryhub.json`),
  );
  const readme = await Deno.readTextFile(`${ROOT}docs/metrics.md`);
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      for (const name of target.expr.match(/telemetry_[a-z_]+/g) ?? []) {
        const base = name.replace(/_(bucket|sum|count)$/, "");
        assert.ok(readme.includes(`\`${base}\``), `${base} is a documented metric`);
      }
    }
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

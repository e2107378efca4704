/**
 * The web console in a real browser (Debian's chromium driven by
 * playwright-core) against a running pipeline: a simulated device whose
 * samples pass an anomaly handler and are aggregated and stored in a fresh
 * PostgreSQL schema, and an intake pipeline whose gate handler dead-letters
 * until the test opens it.
 *
 * Screenshots of each view go to a temporary directory; with
 * `UPDATE_SCREENSHOTS=1` they replace those in docs/screenshots/.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Hono } from "@hono/hono";
import type { Page } from "playwright-core";
import { createAdminApp } from "../core/admin/app.ts";
import { serveAdmin } from "../core/admin/serve.ts";
import { loadConfigText } from "../core/config/mod.ts";
import { defineHandler, PermanentError, z } from "../core/mod.ts";
import { PluginRegistry } from "../core/registry.ts";
import { Runtime } from "../core/runtime/runtime.ts";
import { recordingLogger } from "../core/testing.ts";
import { BUILTIN_PLUGINS } from "../cli/builtins.ts";
import { dropSchema, freshSchema, HAVE_POSTGRES, PG_URL } from "./_fixtures/pg_env.ts";
import { HAVE_CHROMIUM, launchChromium } from "./_fixtures/browser.ts";
import { waitFor } from "./_fixtures/runtime.ts";

const TOKEN = "console-test-token";

/** Whether the gate dead-letters what it sees (the test opens it before replaying). */
let gateClosed = true;

const gateHandler = defineHandler({
  name: "gate",
  summary: "Fails permanently while closed (tests)",
  config: z.strictObject({}),
  create() {
    return {
      handle() {
        if (gateClosed) throw new PermanentError("Gate closed");
      },
    };
  },
});

const yaml = (schema: string) =>
  `# The console test's pipelines
admin:
  listen: "127.0.0.1:0"
  token: ${TOKEN}
devices:
  boiler:
    type: simulated
    config: { rate: 20, metrics: [temperature] }
  pump:
    type: simulated
    config: { rate: 4, metrics: [pressure, humidity] }
brokers:
  mem: { type: memory }
handlers:
  gate: { type: gate }
  anomaly:
    type: anomaly
    config:
      store: false
      rules:
        - { kind: threshold, metric: temperature, above: 80, severity: critical }
        - { kind: threshold, metric: temperature, above: 65, name: warm }
  store: { type: store, config: { url: "${PG_URL}", schema: ${schema} } }
  aggregate: { type: aggregate, config: { url: "${PG_URL}", schema: ${schema}, windows: [1s] } }
pipelines:
  main:
    from: [boiler, pump]
    via: mem
    handlers: [anomaly, aggregate, store]
    batch: { max_samples: 50, max_wait: 50ms }
  intake:
    via: mem
    task_type: telemetry.intake
    handlers: [gate, store]
    batch: { max_samples: 50, max_wait: 5ms }
`;

/** An hour of the boiler's history, one sample every 10 s, shaped like the simulated device. */
function history(now: number): unknown[] {
  const out = [];
  for (let t = now - 3_600_000; t < now - 10_000; t += 10_000) {
    const wave = 10 * Math.sin((2 * Math.PI * t) / 600_000);
    const noise = 0.6 * Math.sin(t / 7_000) + 0.3 * Math.sin(t / 1_300);
    out.push({ device: "boiler", metric: "temperature", value: 50 + wave + noise, ts: t });
  }
  return out;
}

const SHOTS = Deno.env.get("UPDATE_SCREENSHOTS") === "1"
  ? new URL("../docs/screenshots/", import.meta.url).pathname
  : await Deno.makeTempDir({ prefix: "console_shots_" });

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SHOTS}/${name}.png` });
}

Deno.test({
  name: "the console shows live devices, brokers, charts, anomalies and the configuration, " +
    "replays and purges dead letters, and refuses a wrong token",
  ignore: !HAVE_POSTGRES || !HAVE_CHROMIUM,
  // Playwright keeps its pipe to the browser open until the browser exits.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const schema = freshSchema("console");
    const dir = await Deno.makeTempDir({ prefix: "console_test_" });
    const file = `${dir}/telemetry.yaml`;
    await Deno.writeTextFile(file, yaml(schema));
    const registry = PluginRegistry.of([...BUILTIN_PLUGINS, gateHandler]);
    const loaded = await loadConfigText(yaml(schema), { file, registry, env: {} });
    const runtime = await Runtime.create(loaded, { logger: recordingLogger().logger });
    const app = createAdminApp(runtime, {
      registry,
      redactedConfig: () => loaded.redacted,
      version: "0.0.0-test",
      env: {},
      secrets: loaded.secrets,
    });
    const abort = new AbortController();
    const listener = await serveAdmin(app as Hono, {
      admin: runtime.config.admin,
      logger: recordingLogger().logger,
      signal: abort.signal,
    });
    const base = `http://${listener.address}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    const post = async (pipeline: string, body: unknown) => {
      const res = await fetch(`${base}/api/v1/samples?pipeline=${pipeline}`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 202, await res.text());
    };
    const dlq = async () =>
      (await (await fetch(`${base}/api/v1/dlq?pipeline=intake`, { headers: auth })).json())
        .items as { task: { id: string; payload: { samples: { device: string }[] } } }[];
    const browser = await launchChromium();
    try {
      runtime.start();
      await Deno.mkdir(SHOTS, { recursive: true });
      // The boiler's last hour, two readings the anomaly rules flag, and two intake
      // samples the closed gate dead-letters.
      await post("main", history(Date.now()));
      await post("main", { device: "boiler", metric: "temperature", value: 99, unit: "°C" });
      await post("main", { device: "boiler", metric: "temperature", value: 70, unit: "°C" });
      // One at a time: posted together they could be batched into one task.
      await post("intake", { device: "probe", metric: "level", value: 42 });
      await waitFor(async () => (await dlq()).length === 1, "a dead letter", 10_000);
      await post("intake", { device: "sonde", metric: "level", value: 7 });
      await waitFor(async () => (await dlq()).length === 2, "two dead letters", 10_000);

      const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
      // The build machines are shared: allow slow steps, still waiting for conditions.
      page.setDefaultTimeout(60_000);
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      // Works offline: the page asks nothing of any other origin.
      const foreign: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith(`${base}/`)) foreign.push(r.url());
      });

      // A token is configured: the page asks for it, and a wrong one is refused.
      await page.goto(`${base}/#overview`);
      await page.waitForSelector("#token-dialog[open]");
      await shoot(page, "token");
      await page.fill("#token-input", "wrong-token");
      await page.press("#token-input", "Enter");
      // Locators, not page functions: the console's CSP forbids evaluating strings.
      await page.locator("#token-reason", { hasText: "refused" }).waitFor();
      assert.equal(await page.isVisible("#token-dialog"), true);
      const refused = await fetch(`${base}/api/v1/status`, {
        headers: { authorization: "Bearer wrong-token" },
      });
      assert.equal(refused.status, 401);
      await refused.body?.cancel();

      // The right token: the device is up with its rate and last value (from the server),
      // and the broker shows the two dead letters.
      await page.fill("#token-input", TOKEN);
      await page.press("#token-input", "Enter");
      const boiler = page.locator('#devices tr[data-device="boiler"][data-state="up"]');
      await boiler.locator("td.last", { hasText: /temperature \d+(\.\d+)? °C/ }).waitFor();
      await boiler.locator("td", { hasText: /^[1-9]\d*(\.\d)?\/s$/ }).waitFor();
      await page.locator('#brokers tr[data-broker="mem"] td:nth-child(7)', { hasText: /^2$/ })
        .waitFor();
      await shoot(page, "overview");
      // Live: the page updates by itself.
      const samples = boiler.locator("td:nth-child(6)");
      const before = await samples.textContent();
      await waitFor(async () => await samples.textContent() !== before, "a live update", 20_000);

      // Charts: the last 5 minutes of samples fill as the device runs; the last hour
      // comes from the aggregates in 10 s buckets.
      await page.click('a[data-view="charts"]');
      await page.fill("#chart-device", "boiler");
      await page.fill("#chart-metric", "temperature");
      await page.selectOption("#chart-range", { label: "5 minutes" });
      await page.selectOption("#chart-step", { label: "samples" });
      await page.click('#chart-form button[type="submit"]');
      const points = async () => Number(await page.getAttribute("#chart", "data-points"));
      await waitFor(async () => await points() >= 20, "the chart to get points", 20_000);
      const filled = await points();
      await waitFor(async () => await points() > filled, "the chart to fill further", 20_000);
      assert.equal(await page.getAttribute("#chart", "data-source"), "samples");
      await page.selectOption("#chart-range", { label: "1 hour" });
      await page.selectOption("#chart-step", { label: "auto" });
      await page.click('#chart-form button[type="submit"]');
      await page.locator("#chart-info", { hasText: /from aggregates, 10s buckets/ }).waitFor();
      assert.ok(await points() >= 300, `${await points()} buckets over the hour`);
      await shoot(page, "charts");
      // A chosen range: ten minutes of the seeded hour, one sample every 10 s.
      const local = (ms: number) =>
        new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
      await page.selectOption("#chart-range", { label: "from … to …" });
      await page.fill("#chart-from", local(Date.now() - 1_800_000));
      await page.fill("#chart-to", local(Date.now() - 1_200_000));
      await page.click('#chart-form button[type="submit"]');
      await page.locator("#chart-info", { hasText: /^\d+ points from samples$/ }).waitFor();
      const chosen = await points();
      assert.ok(chosen >= 55 && chosen <= 61, `${chosen} samples in ten minutes`);
      assert.equal(await page.isChecked("#chart-live"), false, "a fixed range is not followed");

      // Anomalies: both readings flagged, the worst by the critical rule.
      await page.click('a[data-view="anomalies"]');
      await page.locator('#anomalies tr[data-severity="critical"]', { hasText: "99" }).waitFor();
      // The warm rule's condition may still be open from 99 when 70 comes: one anomaly or two.
      await page.locator('#anomalies tr[data-severity="warning"]', { hasText: "warm" }).first()
        .waitFor();
      await page.selectOption("#anomaly-severity", "critical");
      await page.click('#anomaly-form button[type="submit"]');
      await page.locator('#anomalies tr[data-severity="warning"]').first()
        .waitFor({ state: "detached" });
      await page.selectOption("#anomaly-severity", "info");
      await page.click('#anomaly-form button[type="submit"]');
      await page.locator('#anomalies tr[data-severity="warning"]').first().waitFor();
      await shoot(page, "anomalies");

      // Dead letters: inspect one, replay it from the UI with the gate open (it is
      // stored), purge the other.
      const letters = await dlq();
      const probe = letters.find((d) => d.task.payload.samples[0]!.device === "probe")!;
      const sonde = letters.find((d) => d.task.payload.samples[0]!.device === "sonde")!;
      await page.click('a[data-view="dlq"]');
      await page.selectOption("#dlq-pipeline", "intake");
      await page.waitForSelector(`#dlq tr[data-task="${probe.task.id}"]`);
      await page.waitForSelector(`#dlq tr[data-task="${sonde.task.id}"]`);
      await page.click(`button[aria-label="Inspect ${probe.task.id}"]`);
      assert.match(await page.textContent("#dlq-detail") ?? "", /Gate closed/);
      await shoot(page, "dlq");

      gateClosed = false;
      await page.click(`button[aria-label="Replay ${probe.task.id}"]`);
      await page.locator("#message", { hasText: "Replayed 1 dead letter" }).waitFor();
      await page.waitForSelector(`#dlq tr[data-task="${probe.task.id}"]`, { state: "detached" });
      await waitFor(
        async () => {
          const s = await (await fetch(
            `${base}/api/v1/series?device=probe&metric=level&from=0`,
            { headers: auth },
          )).json();
          return s.points.length === 1 && s.points[0][1] === 42;
        },
        "the replayed sample stored",
        10_000,
      );
      page.once("dialog", (d) => d.accept());
      await page.click(`button[aria-label="Purge ${sonde.task.id}"]`);
      await page.locator("#message", { hasText: "Purged 1 dead letter" }).waitFor();
      await page.waitForSelector("#dlq-empty:not([hidden])");
      assert.equal((await dlq()).length, 0);

      // The live tap streams samples with the token.
      await page.click('a[data-view="tap"]');
      await page.fill("#tap-device", "boiler");
      await page.click("#tap-start");
      await page.locator("#tap tbody tr").nth(9).waitFor();
      await page.click("#tap-stop");
      // At any stage: what a named handler passed on.
      await page.selectOption("#tap-stage", { label: "after a handler" });
      await page.fill("#tap-handler", "anomaly");
      await page.fill("#tap-device", "boil*");
      await page.click("#tap-start");
      await page.locator("#tap tbody tr", { hasText: "boiler" }).nth(9).waitFor();
      await shoot(page, "tap");
      await page.click("#tap-stop");

      // Configuration: the file as written with the token hidden, and a broken copy
      // validated with its problem positioned.
      await page.click('a[data-view="config"]');
      await page.locator("#config-file", { hasText: file }).waitFor();
      const source = await page.inputValue("#config-editor");
      assert.match(source, /^# The console test's pipelines\n/);
      assert.match(source, /token: "\*\*\*"\n/);
      assert.ok(!source.includes(TOKEN), "the token is hidden");
      assert.match(await page.textContent("#config-effective") ?? "", /"token": "\*\*\*"/);
      await page.click('#config-form button[type="submit"]');
      await page.waitForSelector('#config-result[data-valid="true"]');
      await page.fill("#config-editor", source.replace("rate: 20", "rate: fast"));
      await page.click('#config-form button[type="submit"]');
      await page.waitForSelector('#config-result[data-valid="false"]');
      const line = source.split("\n").findIndex((l) => l.includes("rate: 20")) + 1;
      await page.locator("#config-result li", { hasText: "devices.boiler.config.rate" })
        .locator(`button[aria-label^="Go to line ${line},"]`).click();
      await shoot(page, "config");

      assert.deepEqual(pageErrors, []);
      assert.deepEqual(foreign, []);
    } finally {
      await browser.close();
      abort.abort();
      await listener.finished;
      await runtime.stop();
      await dropSchema(schema);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

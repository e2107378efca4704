/**
 * The web console in a real browser (Debian's chromium driven by
 * playwright-core) against a running pipeline: a simulated device stored in
 * a fresh PostgreSQL schema, and an intake pipeline whose gate handler
 * dead-letters until the test opens it.
 *
 * Screenshots of each view go to a temporary directory; with
 * `UPDATE_SCREENSHOTS=1` they replace those in docs/screenshots/.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Hono } from "@hono/hono";
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

const yaml = (schema: string) => `
admin:
  listen: "127.0.0.1:0"
  token: ${TOKEN}
devices:
  boiler:
    type: simulated
    config: { rate: 20, metrics: [temperature] }
brokers:
  mem: { type: memory }
handlers:
  gate: { type: gate }
  store: { type: store, config: { url: "${PG_URL}", schema: ${schema} } }
  aggregate: { type: aggregate, config: { url: "${PG_URL}", schema: ${schema}, windows: [1s] } }
pipelines:
  main:
    from: [boiler]
    via: mem
    handlers: [aggregate, store]
    batch: { max_samples: 50, max_wait: 50ms }
  intake:
    via: mem
    task_type: telemetry.intake
    handlers: [gate, store]
    batch: { max_samples: 50, max_wait: 5ms }
`;

const SHOTS = Deno.env.get("UPDATE_SCREENSHOTS") === "1"
  ? new URL("../docs/screenshots/", import.meta.url).pathname
  : await Deno.makeTempDir({ prefix: "console_shots_" });

Deno.test({
  name: "the console shows a live device, charts its series, replays a dead letter and " +
    "refuses a wrong token",
  ignore: !HAVE_POSTGRES || !HAVE_CHROMIUM,
  // Playwright keeps its pipe to the browser open until the browser exits.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const schema = freshSchema("console");
    const registry = PluginRegistry.of([...BUILTIN_PLUGINS, gateHandler]);
    const loaded = await loadConfigText(yaml(schema), {
      file: "console.yaml",
      registry,
      env: {},
    });
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
    const browser = await launchChromium();
    try {
      runtime.start();
      await Deno.mkdir(SHOTS, { recursive: true });
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      // The build machines are shared: allow slow steps, still waiting for conditions.
      page.setDefaultTimeout(60_000);
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(String(e)));

      // A token is configured: the page asks for it, and a wrong one is refused.
      await page.goto(`${base}/#overview`);
      await page.waitForSelector("#token-dialog[open]");
      await page.screenshot({ path: `${SHOTS}/token.png` });
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

      // The right token: the overview shows the device up with a last value.
      await page.fill("#token-input", TOKEN);
      await page.press("#token-input", "Enter");
      await page.waitForSelector('#devices tr[data-device="boiler"][data-state="up"]');
      await page.locator('#devices tr[data-device="boiler"]', { hasText: /temperature \d/ })
        .waitFor();
      await page.locator("#devices tbody td", { hasText: /^\d+(\.\d+)?\/s$/ }).waitFor();
      await page.screenshot({ path: `${SHOTS}/overview.png` });

      // Charts: the device's series fills from the store, then buckets from the aggregates.
      await page.click('a[data-view="charts"]');
      await page.fill("#chart-device", "boiler");
      await page.fill("#chart-metric", "temperature");
      await page.click('#chart-form button[type="submit"]');
      await waitFor(
        async () => Number(await page.getAttribute("#chart", "data-points")) >= 20,
        "the chart to get points",
        10_000,
      );
      assert.match(await page.textContent("#chart-info") ?? "", /from samples/);
      await page.screenshot({ path: `${SHOTS}/charts.png` });
      const buckets = await (await fetch(
        `${base}/api/v1/series?device=boiler&metric=temperature&step=1s`,
        { headers: auth },
      )).json();
      assert.equal(buckets.source, "aggregates");
      assert.equal(buckets.step_ms, 1000);
      assert.ok(buckets.points.length > 0 && buckets.points[0].length === 5);

      // A dead letter: a sample the closed gate refuses.
      const posted = await fetch(`${base}/api/v1/samples?pipeline=intake`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ device: "probe", metric: "level", value: 42 }),
      });
      assert.equal(posted.status, 202);
      await posted.body?.cancel();
      const dlq = async () =>
        (await (await fetch(`${base}/api/v1/dlq?pipeline=intake`, { headers: auth })).json())
          .items as { task: { id: string } }[];
      await waitFor(async () => (await dlq()).length === 1, "a dead letter", 10_000);
      const [letter] = await dlq();

      await page.click('a[data-view="dlq"]');
      await page.selectOption("#dlq-pipeline", "intake");
      await page.waitForSelector(`#dlq tr[data-task="${letter!.task.id}"]`);
      await page.click(`button[aria-label="Inspect ${letter!.task.id}"]`);
      assert.match(await page.textContent("#dlq-detail") ?? "", /Gate closed/);
      await page.screenshot({ path: `${SHOTS}/dlq.png` });

      // Replayed from the UI with the gate open: it leaves the DLQ and is stored.
      gateClosed = false;
      await page.click(`button[aria-label="Replay ${letter!.task.id}"]`);
      await page.waitForSelector("#dlq-empty:not([hidden])");
      assert.match(await page.textContent("#message") ?? "", /Replayed 1 dead letter/);
      assert.equal((await dlq()).length, 0);
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

      // The live tap streams samples with the token.
      await page.click('a[data-view="tap"]');
      await page.fill("#tap-device", "boiler");
      await page.click("#tap-start");
      await page.locator("#tap tbody tr").nth(4).waitFor();
      await page.screenshot({ path: `${SHOTS}/tap.png` });
      await page.click("#tap-stop");

      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      abort.abort();
      await listener.finished;
      await runtime.stop();
      await dropSchema(schema);
    }
  },
});

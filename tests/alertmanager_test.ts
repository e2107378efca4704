/**
 * The `alertmanager` sink of the alert handler against a real Prometheus
 * Alertmanager (Debian `prometheus-alertmanager`, started on free ports by
 * the test and stopped by its pid): an anomaly becomes an active alert
 * with our labels, and its resolution ends it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type AnomalyEvent, createEventBus, silentLogger } from "../core/mod.ts";
import { recordingMetrics, testContext } from "../core/testing.ts";
import alert from "../handlers/alert/mod.ts";
import { freePort, needs } from "./_fixtures/tools.ts";
import { waitFor } from "./_fixtures/runtime.ts";

async function startAlertmanager() {
  const dir = await Deno.makeTempDir({ prefix: "th_am_" });
  await Deno.writeTextFile(
    `${dir}/alertmanager.yml`,
    'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n',
  );
  const port = freePort();
  const child = new Deno.Command("prometheus-alertmanager", {
    args: [
      `--config.file=${dir}/alertmanager.yml`,
      `--storage.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--cluster.listen-address=",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      try {
        const r = await fetch(`${url}/-/ready`);
        await r.body?.cancel();
        return r.ok;
      } catch {
        return false;
      }
    },
    "Alertmanager ready",
    15_000,
  );
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  status: { state: string };
}

Deno.test({
  name: "alertmanager sink: an anomaly becomes an active alert and its resolution ends it",
  ignore: await needs("prometheus-alertmanager"),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const am = await startAlertmanager();
    const events = createEventBus(silentLogger);
    const recorded = recordingMetrics("handler", "alert");
    const controller = new AbortController();
    const handler = await alert.create(
      alert.config.parse({
        sinks: [{ type: "alertmanager", url: am.url, labels: { site: "north" } }],
        cooldown: 0,
      }),
      testContext({ name: "alert", events, signal: controller.signal, metrics: recorded.metrics }),
    );
    const alerts = async (): Promise<AmAlert[]> =>
      await (await fetch(`${am.url}/api/v2/alerts?filter=alertname="TelemetryAnomaly"`)).json();
    try {
      const now = Date.now();
      const anomaly: AnomalyEvent = {
        id: "a-1",
        device: "boiler_1",
        metric: "temperature",
        ts: now - 1000,
        value: 97,
        expected_low: null,
        expected_high: 90,
        score: 7,
        rule: "threshold:temperature",
        severity: "critical",
        detail: "Value 97 is above 90",
      };
      events.publish("anomaly", anomaly);
      await waitFor(async () => (await alerts()).length === 1, "the alert in Alertmanager");
      const [active] = await alerts();
      assert.deepEqual(active!.labels, {
        alertname: "TelemetryAnomaly",
        device: "boiler_1",
        metric: "temperature",
        rule: "threshold:temperature",
        severity: "critical",
        site: "north",
      });
      assert.equal(active!.status.state, "active");
      assert.equal(
        active!.annotations.summary,
        "threshold:temperature on boiler_1/temperature: Value 97 is above 90",
      );
      assert.equal(active!.annotations.anomaly_id, "a-1");

      events.publish("anomaly.resolved", {
        anomaly_id: "a-1",
        device: "boiler_1",
        metric: "temperature",
        rule: "threshold:temperature",
        ts: now,
      });
      await waitFor(async () => (await alerts()).length === 0, "the alert resolved");
      await handler.flush?.();
      const sink = `alertmanager ${am.url}`;
      assert.equal(
        await recorded.value("alerts_total", { sink, status: "firing", outcome: "sent" }),
        1,
      );
      assert.equal(
        await recorded.value("alerts_total", { sink, status: "resolved", outcome: "sent" }),
        1,
      );
    } finally {
      controller.abort();
      await handler.close?.();
      await am.stop();
    }
  },
});

Deno.test("alertmanager sink config wants an http URL and a resolve_after of a minute or more", () => {
  const parse = (sink: Record<string, unknown>) => alert.config.safeParse({ sinks: [sink] });
  assert.equal(parse({ type: "alertmanager", url: "http://am:9093" }).success, true);
  assert.equal(parse({ type: "alertmanager", url: "am:9093" }).success, false);
  assert.equal(
    parse({ type: "alertmanager", url: "http://am:9093", resolve_after: "10s" }).success,
    false,
  );
  const wrong = parse({ type: "pagerduty" });
  assert.match(
    String(wrong.error?.issues[0]?.message),
    /"log", "webhook", "alertmanager" or "mqtt"/,
  );
});

import assert from "node:assert/strict";
import {
  type AnomalyEvent,
  createEventBus,
  type HandlerContext,
  silentLogger,
} from "../../core/mod.ts";
import { FakeClock, recordingLogger, recordingMetrics, testContext } from "../../core/testing.ts";
import alert from "./mod.ts";

interface Received {
  headers: Headers;
  body: Record<string, unknown>;
}

/**
 * A real HTTP server on 127.0.0.1 answering with the scripted statuses (then 200), each answer
 * after the scripted delay (then `delayMs`).
 */
function webhookServer(script: number[] = [], delayMs = 0, delays: number[] = []) {
  const received: Received[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const body = await request.json();
      received.push({ headers: request.headers, body });
      const delay = delays.shift() ?? delayMs;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      const status = script.shift() ?? 200;
      return new Response(status >= 400 ? `status ${status}` : "ok", { status });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/hook`;
  return { url, received, close: () => server.shutdown() };
}

async function setup(config: Record<string, unknown>) {
  const clock = new FakeClock();
  const events = createEventBus(silentLogger);
  const { logger, lines } = recordingLogger();
  const controller = new AbortController();
  const recorded = recordingMetrics("handler", "alert");
  const handler = await alert.create(
    alert.config.parse(config),
    testContext({
      name: "alert",
      clock,
      events,
      logger,
      signal: controller.signal,
      metrics: recorded.metrics,
    }),
  );
  const hctx = (published: unknown[] = []): HandlerContext => ({
    task: { id: "t", type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 },
    attempt: 1,
    pipeline: "main",
    signal: controller.signal,
    clock,
    publish() {},
    published: (topic) => (topic === "anomaly" ? published : []),
  });
  /** Waits for real I/O, moving the fake clock on so backoff sleeps end. */
  const until = async (condition: () => boolean, what: string, step = 1000) => {
    const end = Date.now() + 5000;
    while (!condition()) {
      if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
      await clock.advance(step);
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  const stop = async () => {
    await handler.flush?.();
    controller.abort();
    await handler.close?.();
  };
  return { clock, events, lines, handler, hctx, until, stop, metric: recorded.value };
}

let n = 0;
function anomaly(extra: Partial<AnomalyEvent> = {}): AnomalyEvent {
  return {
    id: `a${n++}`,
    device: "boiler",
    metric: "temperature",
    ts: 1000,
    value: 99,
    expected_low: null,
    expected_high: 90,
    score: 9,
    rule: "threshold:temperature",
    severity: "critical",
    detail: "Value 99 is above 90",
    ...extra,
  };
}

Deno.test("alert webhook POSTs a firing notice as JSON with the configured headers", async () => {
  const hook = webhookServer();
  const s = await setup({
    sinks: [{ type: "webhook", url: hook.url, headers: { Authorization: "Bearer secret" } }],
  });
  const a = anomaly();
  s.events.publish("anomaly", a);
  await s.until(() => hook.received.length === 1, "one delivery");
  const [got] = hook.received;
  assert.equal(got!.headers.get("authorization"), "Bearer secret");
  assert.equal(got!.headers.get("content-type"), "application/json");
  assert.deepEqual(got!.body, {
    status: "firing",
    device: "boiler",
    metric: "temperature",
    rule: "threshold:temperature",
    severity: "critical",
    ts: 1000,
    suppressed: 0,
    anomaly: a,
  });
  await s.stop();
  await hook.close();
});

Deno.test("alert webhook retries a 5xx with backoff until it is delivered", async () => {
  const hook = webhookServer([503, 500]);
  const s = await setup({ sinks: [{ type: "webhook", url: hook.url, backoff: "2s" }] });
  s.events.publish("anomaly", anomaly());
  await s.until(() => hook.received.length === 1, "first attempt", 0);
  await s.until(() => hook.received.length === 3, "two retries");
  const ids = hook.received.map((r) => (r.body.anomaly as AnomalyEvent).id);
  assert.equal(new Set(ids).size, 1, "the same alert each time");
  assert.equal(s.lines.filter((l) => l.level === "error").length, 0);
  await s.stop();
  const sink = `webhook http://127.0.0.1:${new URL(hook.url).port}`;
  assert.equal(await s.metric("alerts_total", { sink, status: "firing", outcome: "sent" }), 1);
  assert.equal(await s.metric("alert_delivery_seconds", { sink }), 1, "one delivery timed");
  assert.equal(
    await s.metric("alerts_total", { outcome: "failed" }),
    0,
    "retries are not failures",
  );
  await hook.close();
});

Deno.test("alert webhook does not retry a 4xx and logs it", async () => {
  const hook = webhookServer([400]);
  const s = await setup({ sinks: [{ type: "webhook", url: hook.url, backoff: "1s" }] });
  s.events.publish("anomaly", anomaly());
  await s.until(
    () => s.lines.some((l) => String(l.msg).includes("refused an alert (not retried)")),
    "the refusal logged",
  );
  await s.clock.advance(120_000);
  // Nothing more is on its way: the sinks are idle (no queued or pending notice).
  await s.handler.flush!();
  assert.equal(hook.received.length, 1);
  const line = s.lines.find((l) => l.level === "error")!;
  assert.equal(
    line.msg,
    `Webhook "${hook.url}" refused an alert (not retried): HTTP 400: status 400`,
  );
  assert.equal(await s.metric("alerts_total", { status: "firing", outcome: "failed" }), 1);
  await s.stop();
  await hook.close();
});

Deno.test("alert webhook retries a request that times out", async () => {
  const hook = webhookServer([], 0, [500]);
  const s = await setup({ sinks: [{ type: "webhook", url: hook.url, timeout: "50ms" }] });
  s.events.publish("anomaly", anomaly());
  await s.until(() => hook.received.length === 2, "the retry after the timeout");
  await s.until(
    () => s.lines.some((l) => String(l.msg).includes("no answer within 50ms")),
    "the timeout logged",
  );
  await s.stop();
  await hook.close();
});

Deno.test("alert webhook gives up after its retries on network errors and logs why", async () => {
  const hook = webhookServer();
  await hook.close(); // nothing listens on the port any more
  const s = await setup({ sinks: [{ type: "webhook", url: hook.url, retries: 2, backoff: "1s" }] });
  s.events.publish("anomaly", anomaly());
  await s.until(
    () => s.lines.some((l) => l.level === "error"),
    "the failure logged",
  );
  const line = s.lines.find((l) => l.level === "error")!;
  assert.match(
    String(line.msg),
    new RegExp(`Cannot deliver an alert to webhook "${hook.url}" after 3 attempts: `),
  );
  await s.stop();
});

Deno.test("alert webhook log lines never show the URL's token path or api_key", async () => {
  const hook = webhookServer([400]);
  const token = "a1b2c3d4e5f6g7h8i9j0k1l2";
  const url = `${hook.url}/services/${token}?api_key=k3y-value&channel=ops`;
  const s = await setup({ sinks: [{ type: "webhook", url, backoff: "1s" }] });
  s.events.publish("anomaly", anomaly());
  await s.until(() => s.lines.some((l) => l.level === "error"), "the refusal logged");
  const line = s.lines.find((l) => l.level === "error")!;
  assert.equal(
    line.msg,
    `Webhook "${hook.url}/services/***?api_key=***&channel=ops" refused an alert (not retried): ` +
      "HTTP 400: status 400",
  );
  const all = JSON.stringify(s.lines);
  assert.ok(!all.includes(token) && !all.includes("k3y-value"), all);
  await s.stop();
  await hook.close();
});

Deno.test("alert cooldown holds back repeats per device and rule and counts them", async () => {
  const hook = webhookServer();
  const s = await setup({ sinks: [{ type: "webhook", url: hook.url }], cooldown: "5m" });
  s.events.publish("anomaly", anomaly());
  s.events.publish("anomaly", anomaly()); // same device and rule: held back
  s.events.publish("anomaly", anomaly({ device: "chiller" })); // another device: sent
  s.events.publish("anomaly", anomaly({ rule: "zscore" })); // another rule: sent
  await s.until(() => hook.received.length === 3, "three deliveries", 0);
  await s.clock.advance(4 * 60_000);
  s.events.publish("anomaly", anomaly()); // still within the cooldown
  await s.clock.advance(60_000);
  s.events.publish("anomaly", anomaly()); // cooldown over: sent, counting the two held back
  await s.until(() => hook.received.length === 4, "the fourth delivery", 0);
  const bodies = hook.received.map((r) => [r.body.device, r.body.rule, r.body.suppressed]);
  assert.deepEqual(bodies, [
    ["boiler", "threshold:temperature", 0],
    ["chiller", "threshold:temperature", 0],
    ["boiler", "zscore", 0],
    ["boiler", "threshold:temperature", 2],
  ]);
  assert.equal(await s.metric("alerts_skipped_total", { reason: "cooldown" }), 2);
  assert.equal(await s.metric("alerts_total", { outcome: "sent" }), 4);
  await s.stop();
  await hook.close();
});

Deno.test("alert sends one resolved notice when an alerted condition clears", async () => {
  const hook = webhookServer();
  const s = await setup({ sinks: [{ type: "webhook", url: hook.url }], cooldown: "1m" });
  const a = anomaly();
  s.events.publish("anomaly", a);
  const resolved = { anomaly_id: a.id, device: a.device, metric: a.metric, rule: a.rule, ts: 5000 };
  s.events.publish("anomaly.resolved", resolved);
  s.events.publish("anomaly.resolved", resolved); // already resolved: nothing
  // Flapping inside the cooldown: neither the new alert nor its resolution is sent.
  s.events.publish("anomaly", anomaly());
  s.events.publish("anomaly.resolved", { ...resolved, ts: 6000 });
  await s.until(() => hook.received.length === 2, "two deliveries", 0);
  // Nothing more is on its way: the sinks are idle (no queued or pending notice).
  await s.handler.flush!();
  assert.deepEqual(hook.received.map((r) => r.body.status), ["firing", "resolved"]);
  // The resolved notice names the severity and start of the alert it clears.
  assert.deepEqual(hook.received[1]!.body, {
    status: "resolved",
    ...resolved,
    severity: a.severity,
    started_at: a.ts,
  });
  await s.stop();
  await hook.close();
});

Deno.test("alert sends an anomaly seen on the bus and from its chain once", async () => {
  const hook = webhookServer();
  const s = await setup({ sinks: [{ type: "webhook", url: hook.url }], cooldown: 0 });
  const a = anomaly(), b = anomaly({ ts: 2000 });
  s.events.publish("anomaly", a);
  const result = await s.handler.handle([], s.hctx([a, b]));
  assert.equal(result, undefined, "samples pass through unchanged");
  await s.until(() => hook.received.length === 2, "two deliveries", 0);
  // Nothing more is on its way: the sinks are idle (no queued or pending notice).
  await s.handler.flush!();
  assert.deepEqual(hook.received.map((r) => (r.body.anomaly as AnomalyEvent).id), [a.id, b.id]);
  await s.stop();
  await hook.close();
});

Deno.test("alert drops and counts alerts beyond the queue size", async () => {
  const hook = webhookServer([], 30);
  const s = await setup({
    sinks: [{ type: "webhook", url: hook.url, queue_size: 2 }],
    cooldown: 0,
  });
  for (let i = 0; i < 5; i++) s.events.publish("anomaly", anomaly({ device: `d${i}` }));
  await s.handler.flush?.(); // waits for the in-flight and queued ones
  assert.deepEqual(hook.received.map((r) => r.body.device), ["d0", "d1", "d2"]);
  const full = s.lines.filter((l) => String(l.msg).includes("is full: alerts dropped"));
  assert.equal(full.length, 1, "logged once, not per alert");
  assert.ok(
    s.lines.some((l) =>
      l.msg ===
        `Alert queue of webhook http://127.0.0.1:${new URL(hook.url).port} dropped alerts` &&
      l.dropped === 2
    ),
  );
  assert.equal(await s.metric("alerts_total", { outcome: "dropped" }), 2);
  assert.equal(await s.metric("alerts_total", { outcome: "sent" }), 3);
  assert.equal(await s.metric("alert_queue"), 0, "the queue drained");
  await s.stop();
  await hook.close();
});

Deno.test("alert log sink logs by severity and filters below min_severity", async () => {
  const s = await setup({ min_severity: "warning", cooldown: 0 });
  s.events.publish("anomaly", anomaly());
  s.events.publish("anomaly", anomaly({ severity: "warning", device: "b" }));
  s.events.publish("anomaly", anomaly({ severity: "info", device: "c" }));
  s.events.publish("anomaly", { not: "an anomaly" });
  const alerts = s.lines.filter((l) => String(l.msg).startsWith("Alert "));
  assert.deepEqual(alerts.map((l) => [l.level, l.device]), [["error", "boiler"], ["warn", "b"]]);
  assert.equal(
    alerts[0]!.msg,
    "Alert critical: threshold:temperature on boiler/temperature: Value 99 is above 90",
  );
  assert.ok(s.lines.some((l) => l.msg === "Ignored a malformed anomaly event"));
  assert.equal(
    await s.metric("alerts_total", { sink: "log", status: "firing", outcome: "sent" }),
    2,
  );
  assert.equal(await s.metric("alerts_skipped_total", { reason: "below_min_severity" }), 1);
  await s.stop();
});

Deno.test("alert config rejects a webhook without a valid URL", () => {
  const result = alert.config.safeParse({ sinks: [{ type: "webhook", url: "ftp://x" }] });
  assert.equal(result.success, false);
  assert.match(result.error!.issues[0]!.message, /http:\/\/ or https:\/\//);
});

Deno.test("mqtt sink topics fill the template and neutralise wildcards and separators", async () => {
  const { topicOf } = await import("./_mqtt_sink.ts");
  const notice = {
    status: "firing" as const,
    device: "line/1+#",
    metric: "t",
    rule: "threshold:t",
    severity: "critical" as const,
    ts: 0,
    suppressed: 0,
    anomaly: anomaly(),
  };
  assert.equal(
    topicOf("alerts/{device}/{rule}/{severity}/{status}", notice),
    "alerts/line_1__/threshold:t/critical/firing",
  );
  assert.equal(
    alert.config.safeParse({ sinks: [{ type: "mqtt", url: "http://x" }] }).success,
    false,
  );
  assert.equal(
    alert.config.parse({ sinks: [{ type: "mqtt", url: "mqtt://h:1883" }] }).sinks[0]!.type,
    "mqtt",
  );
});

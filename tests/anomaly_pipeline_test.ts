import assert from "node:assert/strict";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";

Deno.test("analyze → anomaly → alert in one pipeline sends a webhook alert for an anomaly", async () => {
  const bodies: Record<string, unknown>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    bodies.push(await req.json());
    return new Response("ok");
  });
  try {
    const { runtime } = await createRuntime(`
devices:
  dev:
    type: fixed
    config: { count: 100, batch: 10 }
brokers:
  mem: { type: memory }
handlers:
  analyze:
    type: analyze
    config:
      calibrations: [{ metric: temperature, scale: 2 }]
  anomaly:
    type: anomaly
    config:
      store: false
      rules:
        - { kind: threshold, metric: temperature, above: 150, severity: critical }
  alert:
    type: alert
    config:
      sinks: [{ type: webhook, url: "http://127.0.0.1:${server.addr.port}/hook" }]
pipelines:
  main:
    from: [dev]
    via: mem
    handlers: [analyze, anomaly, alert]
    workers: 1
    batch: { max_samples: 10, max_wait: 5ms }
`);
    runtime.start();
    await waitFor(() => runtime.metrics.totals("main").samples_processed >= 100, "100 samples");
    await waitFor(() => bodies.length >= 1, "the webhook alert");
    const summary = await runtime.stop();
    assert.equal(summary.tasks_dead_lettered, 0);
    assert.equal(bodies.length, 1, "one condition, one alert");
    const anomaly = bodies[0]!.anomaly as Record<string, unknown>;
    assert.equal(bodies[0]!.status, "firing");
    assert.equal(anomaly.device, "dev");
    assert.equal(anomaly.value, 152, "judged after calibration (seq 76 × 2)");
    assert.equal(anomaly.severity, "critical");
  } finally {
    await server.shutdown();
  }
});

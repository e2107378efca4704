import assert from "node:assert/strict";
import { type AnomalyEvent, createEventBus } from "../events.ts";
import { silentLogger } from "../log.ts";
import { AnomalyFeed, anomalyRoutes } from "./_anomalies.ts";

function anomaly(id: string, ts: number, extra: Partial<AnomalyEvent> = {}): AnomalyEvent {
  return {
    id,
    device: "boiler_1",
    metric: "temperature",
    ts,
    value: 99,
    expected_low: null,
    expected_high: 80,
    score: 19,
    rule: "threshold",
    severity: "critical",
    ...extra,
  };
}

function fixture(size?: number) {
  const bus = createEventBus(silentLogger);
  const feed = new AnomalyFeed(bus, 5, size);
  return { bus, app: anomalyRoutes(feed) };
}

Deno.test("anomalies lists what the bus published, newest first, once per id, with resolution", async () => {
  const { bus, app } = fixture();
  bus.publish("anomaly", anomaly("a", 10));
  bus.publish("anomaly", anomaly("b", 20, { device: "pump", severity: "info" }));
  bus.publish("anomaly", anomaly("a", 10)); // a redelivered task publishes it again
  bus.publish("anomaly.resolved", {
    anomaly_id: "a",
    device: "boiler_1",
    metric: "temperature",
    rule: "threshold",
    ts: 30,
  });
  const body = await (await app.request("/anomalies")).json();
  assert.equal(body.since, 5);
  assert.deepEqual(body.anomalies.map((a: AnomalyEvent) => a.id), ["b", "a"]);
  assert.equal(body.anomalies[1].resolved_at, 30);
  assert.equal(body.anomalies[0].resolved_at, undefined);
});

Deno.test("anomalies filters by least severity and device glob, and keeps the latest only", async () => {
  const { bus, app } = fixture(3);
  bus.publish("anomaly", anomaly("a", 1, { device: "boiler_1" }));
  bus.publish("anomaly", anomaly("b", 2, { device: "boiler_2", severity: "warning" }));
  bus.publish("anomaly", anomaly("c", 3, { device: "pump", severity: "info" }));
  bus.publish("anomaly", anomaly("d", 4, { device: "boiler_3" }));
  const ids = async (q: string) =>
    ((await (await app.request(`/anomalies${q}`)).json()).anomalies as AnomalyEvent[])
      .map((a) => a.id);
  assert.deepEqual(await ids(""), ["d", "c", "b"]);
  assert.deepEqual(await ids("?severity=warning"), ["d", "b"]);
  assert.deepEqual(await ids("?device=boiler_*"), ["d", "b"]);
  assert.deepEqual(await ids("?limit=1"), ["d"]);
});

Deno.test("anomalies answers 400 problem+json for a bad limit or severity", async () => {
  const { app } = fixture();
  for (const q of ["limit=0", "limit=501", "limit=2.5", "limit=x", "severity=loud"]) {
    const res = await app.request(`/anomalies?${q}`);
    assert.equal(res.status, 400, q);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    await res.body?.cancel();
  }
});

/**
 * The `mqtt` device against a real Mosquitto: JSON and regex messages,
 * devices from the topic, malformed messages, a persistent session that
 * keeps QoS 1 messages sent while the process was away, and a broker
 * restart.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  HAVE_MQTT,
  makeTestPki,
  MQTT_URL,
  mqttClient,
  randomTopic,
  startPrivateBroker,
  startTlsBroker,
} from "./_fixtures/mqtt_broker.ts";
import mqtt from "mqtt";
import { createEventBus, silentLogger } from "../core/mod.ts";
import { recordingMetrics, testContext } from "../core/testing.ts";
import alert from "../handlers/alert/mod.ts";
import { recordings } from "./_fixtures/plugins.ts";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";
import type { Runtime } from "../core/runtime/runtime.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_MQTT, fn, sanitizeOps: false, sanitizeResources: false });

function yaml(key: string, device: string, url = MQTT_URL) {
  return `
admin: { enabled: false }
devices:
  plant:
    type: mqtt
    config:
${device}
      url: "${url}"
      reconnect_period: 100ms
brokers: { mem: { type: memory } }
handlers: { rec: { type: record, config: { key: ${key} } } }
pipelines:
  main:
    from: [plant]
    via: mem
    handlers: [rec]
    batch: { max_samples: 100, max_wait: 5ms }
`;
}

/** Waits until the runtime's device is up: the device reports up once its SUBACK arrives. */
async function upAndSubscribed(runtime: Runtime) {
  await waitFor(() => runtime.devices().every((d) => d.state === "up"), "the device up");
}

test("mqtt turns JSON and regex messages into samples, with the device from the topic", async () => {
  const topic = randomTopic("json");
  const key = `mqtt-json-${topic}`;
  const { runtime } = await createRuntime(yaml(
    key,
    `      topics: ["${topic}/+/telemetry"]
      device_from_topic: 2
      decode: { mode: json, units: { temperature: C } }`,
  ));
  const publisher = await mqttClient();
  try {
    runtime.start();
    await upAndSubscribed(runtime);
    await publisher.publishAsync(
      `${topic}/boiler_7/telemetry`,
      JSON.stringify({ temperature: 71.5, pressure: 2.1 }),
      { qos: 1 },
    );
    await publisher.publishAsync(
      `${topic}/press_2/telemetry`,
      JSON.stringify({ metric: "pressure", value: 3.5, unit: "bar", ts: 1_700_000_000_000 }),
      { qos: 1 },
    );
    await waitFor(() => (recordings.get(key)?.samples.length ?? 0) >= 3, "three samples");
    const seen = recordings.get(key)!.samples.map((s) => [s.device, s.metric, s.value, s.unit]);
    assert.deepEqual(seen, [
      ["boiler_7", "temperature", 71.5, "C"],
      ["boiler_7", "pressure", 2.1, undefined],
      ["press_2", "pressure", 3.5, "bar"],
    ]);
    assert.equal(recordings.get(key)!.samples[2]!.ts, 1_700_000_000_000);
  } finally {
    await publisher.endAsync();
    await runtime.stop();
  }
});

test("mqtt: 200 messages without ts in a burst stay 200 distinct samples; a bad one is a counted read error", async () => {
  const topic = randomTopic("burst");
  const key = `mqtt-burst-${topic}`;
  const { runtime } = await createRuntime(yaml(
    key,
    `      topics: ["${topic}"]
      decode: { mode: json }`,
  ));
  const publisher = await mqttClient();
  try {
    runtime.start();
    await upAndSubscribed(runtime);
    const sends = [];
    for (let i = 0; i < 200; i++) {
      sends.push(
        publisher.publishAsync(topic, JSON.stringify({ metric: "t", value: i }), { qos: 1 }),
      );
    }
    sends.push(
      publisher.publishAsync(topic, JSON.stringify({ metric: "t", value: 1, ts: 1e16 }), {
        qos: 1,
      }),
    );
    await Promise.all(sends);
    await waitFor(() => (recordings.get(key)?.samples.length ?? 0) >= 200, "200 samples");
    const samples = recordings.get(key)!.samples;
    const identities = new Set(samples.map((s) => `${s.device}/${s.metric}/${s.ts}/${s.seq}`));
    assert.equal(identities.size, 200, "no two samples share an identity");
    await waitFor(() => runtime.devices()[0]!.read_errors === 1, "the refused sample counted");
    assert.match(runtime.devices()[0]!.last_error!, /"ts" must be a finite number/);
    assert.equal(samples.length, 200);
  } finally {
    await publisher.endAsync();
    await runtime.stop();
  }
});

test("mqtt counts a malformed message as a read error and goes on", async () => {
  const topic = randomTopic("bad");
  const key = `mqtt-bad-${topic}`;
  const { runtime } = await createRuntime(yaml(
    key,
    `      topics: ["${topic}"]
      decode: { mode: regex, pattern: "T=(?<temperature>-?[0-9.]+)" }`,
  ));
  const publisher = await mqttClient();
  try {
    runtime.start();
    await upAndSubscribed(runtime);
    await publisher.publishAsync(topic, "garbage", { qos: 1 });
    await publisher.publishAsync(topic, "T=21.25", { qos: 1 });
    await waitFor(() => (recordings.get(key)?.samples.length ?? 0) >= 1, "the good message");
    assert.deepEqual(recordings.get(key)!.samples.map((s) => [s.device, s.value]), [[
      "plant",
      21.25,
    ]]);
    const status = runtime.devices()[0]!;
    assert.equal(status.read_errors, 1);
    assert.match(
      status.last_error ?? "",
      /Message on "th_test\/bad_[^"]+": Line "garbage" does not match/,
    );
  } finally {
    await publisher.endAsync();
    await runtime.stop();
  }
});

test("mqtt keeps QoS 1 messages sent while the process was away (persistent session)", async () => {
  const topic = randomTopic("session");
  const key = `mqtt-session-${topic}`;
  const clientId = `th-test-${crypto.randomUUID().slice(0, 8)}`;
  const device = `      topics: ["${topic}"]
      client_id: ${clientId}`;
  const first = await createRuntime(yaml(key, device));
  first.runtime.start();
  await upAndSubscribed(first.runtime);
  await first.runtime.stop();
  // Sent while no process of ours is connected: the broker keeps them for the session.
  const publisher = await mqttClient();
  for (let i = 0; i < 20; i++) {
    await publisher.publishAsync(topic, JSON.stringify({ level: i }), { qos: 1 });
  }
  await publisher.endAsync();
  const second = await createRuntime(yaml(key, device));
  try {
    second.runtime.start();
    await waitFor(() => (recordings.get(key)?.samples.length ?? 0) >= 20, "the 20 queued messages");
    assert.deepEqual(
      recordings.get(key)!.samples.map((s) => s.value),
      Array.from({ length: 20 }, (_, i) => i),
    );
  } finally {
    await second.runtime.stop();
    // Drop the session so the broker forgets it.
    const cleanup = await mqttClient(MQTT_URL, clientId);
    await cleanup.endAsync();
  }
});

test("mqtt goes down when the broker stops and receives again once it is back", async () => {
  const broker = await startPrivateBroker();
  const topic = randomTopic("restart");
  const key = `mqtt-restart-${topic}`;
  const { runtime } = await createRuntime(yaml(key, `      topics: ["${topic}"]`, broker.url));
  try {
    runtime.start();
    await upAndSubscribed(runtime);
    await broker.stop();
    await waitFor(() => runtime.devices()[0]!.state === "down", "the device down");
    await broker.start();
    // The broker kept no session: the device subscribes again on its new connection.
    await upAndSubscribed(runtime);
    const publisher = await mqttClient(broker.url);
    await publisher.publishAsync(topic, JSON.stringify({ level: 5 }), { qos: 1 });
    await publisher.endAsync();
    await waitFor(
      () => (recordings.get(key)?.samples.length ?? 0) >= 1,
      "a message after the restart",
    );
    assert.equal(recordings.get(key)!.samples[0]!.value, 5);
    // Stopping while the broker is away still ends the device (nothing to disconnect from).
    await broker.stop();
    await waitFor(() => runtime.devices()[0]!.state === "down", "the device down again");
    const summary = await runtime.stop();
    assert.equal(summary.samples_dropped, 0);
    assert.equal(runtime.devices()[0]!.state, "stopped");
  } finally {
    await runtime.stop();
    await broker.stop();
  }
});

test("mqtt holds the broker back while a blocking hub queue is full, and loses nothing", async () => {
  const topic = randomTopic("pressure");
  const key = `mqtt-pressure-${topic}`;
  const { runtime } = await createRuntime(
    yaml(key, `      topics: ["${topic}"]`)
      .replace("config: { key: " + key + " }", `config: { key: ${key}, delay: 5ms }`)
      .replace(
        "batch: { max_samples: 100, max_wait: 5ms }",
        "batch: { max_samples: 5, max_wait: 5ms }\n    hub_queue: { capacity: 10, overflow: block }",
      ),
  );
  const publisher = await mqttClient();
  try {
    runtime.start();
    await upAndSubscribed(runtime);
    const sent = Array.from({ length: 300 }, (_, i) => i);
    await Promise.all(
      sent.map((i) => publisher.publishAsync(topic, JSON.stringify({ n: i }), { qos: 1 })),
    );
    await waitFor(() => (recordings.get(key)?.samples.length ?? 0) >= 300, "every message", 30_000);
    // Tasks run on several workers, so they finish in any order; each sample comes once.
    const values = recordings.get(key)!.samples.map((s) => s.value).sort((a, b) => a - b);
    assert.deepEqual(values, sent, "once each");
    assert.equal(runtime.metrics.grandTotals().samples_dropped, 0);
  } finally {
    await publisher.endAsync();
    await runtime.stop();
  }
});

test("mqtt talks TLS with a client certificate, and a device without one stays down", async () => {
  const pki = await makeTestPki();
  const broker = await startTlsBroker(pki);
  const topic = randomTopic("tls");
  const key = `mqtt-tls-${topic}`;
  const tls =
    `      tls: { ca_file: "${pki.ca}", cert_file: "${pki.clientCert}", key_file: "${pki.clientKey}" }`;
  const { runtime } = await createRuntime(
    yaml(key, `      topics: ["${topic}"]\n${tls}`, broker.url),
  );
  const noCert = await createRuntime(
    yaml(
      `${key}-nocert`,
      `      topics: ["${topic}"]\n      tls: { ca_file: "${pki.ca}" }`,
      broker.url,
    ),
  );
  const ca = await Deno.readTextFile(pki.ca);
  const cert = await Deno.readTextFile(pki.clientCert);
  const keyPem = await Deno.readTextFile(pki.clientKey);
  try {
    runtime.start();
    noCert.runtime.start();
    await upAndSubscribed(runtime);
    const publisher = await mqtt.connectAsync(broker.url, {
      ca,
      cert,
      key: keyPem,
      reconnectPeriod: 0,
    });
    await publisher.publishAsync(topic, JSON.stringify({ level: 7 }), { qos: 1 });
    await publisher.endAsync();
    await waitFor(() => (recordings.get(key)?.samples.length ?? 0) >= 1, "a message over TLS");
    assert.equal(recordings.get(key)!.samples[0]!.value, 7);
    await waitFor(
      () => noCert.runtime.devices()[0]!.state === "down",
      "the device without a cert down",
    );
    assert.equal(recordings.get(`${key}-nocert`)?.samples.length ?? 0, 0);
  } finally {
    await runtime.stop();
    await noCert.runtime.stop();
    await broker.stop();
    await Deno.remove(pki.dir, { recursive: true });
  }
});

test("alert's mqtt sink publishes firing and resolved notices, retained per condition", async () => {
  const prefix = randomTopic("alerts");
  const events = createEventBus(silentLogger);
  const recorded = recordingMetrics("handler", "alert");
  const controller = new AbortController();
  const handler = await alert.create(
    alert.config.parse({
      sinks: [{ type: "mqtt", url: MQTT_URL, topic: `${prefix}/{device}/{rule}` }],
      cooldown: 0,
    }),
    testContext({ name: "alert", events, signal: controller.signal, metrics: recorded.metrics }),
  );
  const subscriber = await mqttClient();
  const received: { topic: string; body: Record<string, unknown> }[] = [];
  subscriber.on("message", (topic, payload) => {
    if (payload.length > 0) received.push({ topic, body: JSON.parse(payload.toString()) });
  });
  await subscriber.subscribeAsync(`${prefix}/#`, { qos: 1 });
  const topic = `${prefix}/boiler_1/threshold_temperature`;
  try {
    events.publish("anomaly", {
      id: "a-1",
      device: "boiler_1",
      metric: "temperature",
      ts: 1_700_000_000_000,
      value: 97,
      expected_low: null,
      expected_high: 90,
      score: 7,
      rule: "threshold_temperature",
      severity: "critical",
      detail: "Value 97 is above 90",
    });
    events.publish("anomaly.resolved", {
      anomaly_id: "a-1",
      device: "boiler_1",
      metric: "temperature",
      rule: "threshold_temperature",
      ts: 1_700_000_060_000,
    });
    await waitFor(() => received.length === 2, "two notices");
    assert.deepEqual(received.map((m) => [m.topic, m.body.status]), [
      [topic, "firing"],
      [topic, "resolved"],
    ]);
    assert.equal((received[0]!.body.anomaly as { id: string }).id, "a-1");
    await handler.flush?.();
    const sink = `mqtt ${MQTT_URL}`;
    assert.equal(await recorded.value("alerts_total", { sink, outcome: "sent" }), 2);
    // A screen that subscribes later sees the condition's latest state.
    const late = await mqttClient();
    const retained: string[] = [];
    late.on("message", (_t, payload) => retained.push(JSON.parse(payload.toString()).status));
    await late.subscribeAsync(topic, { qos: 1 });
    await waitFor(() => retained.length === 1, "the retained notice");
    assert.deepEqual(retained, ["resolved"]);
    await late.endAsync();
  } finally {
    await subscriber.publishAsync(topic, "", { qos: 1, retain: true }); // clear the retained one
    await subscriber.endAsync();
    controller.abort();
    await handler.close?.();
  }
});

import assert from "node:assert/strict";
import mqtt, { defaultClientId } from "./mod.ts";

Deno.test("mqtt config takes a broker URL and topics, with QoS 1 and JSON by default", () => {
  assert.equal(mqtt.config.safeParse({ url: "http://x", topics: ["a"] }).success, false);
  assert.equal(mqtt.config.safeParse({}).success, false, "topics are required");
  assert.equal(mqtt.config.safeParse({ topics: [] }).success, false);
  const parsed = mqtt.config.parse({ topics: ["a/#"] });
  assert.equal(parsed.url, "mqtt://127.0.0.1:1883");
  assert.equal(parsed.qos, 1);
  assert.equal(parsed.clean_session, false);
  assert.equal(parsed.decode.mode, "json");
  const half = mqtt.config.safeParse({ topics: ["a"], tls: { cert_file: "c.pem" } });
  assert.match(String(half.error?.issues[0]?.message), /cert_file and key_file go together/);
  const regex = mqtt.config.safeParse({ topics: ["a"], decode: { mode: "regex", pattern: "x" } });
  assert.equal(regex.success, false, "a pattern needs a named group");
});

Deno.test("the default client id is stable for the same subscriptions and changes with them", async () => {
  const a = await defaultClientId("line_1", { topics: ["b/#", "a/+"], qos: 1 });
  assert.match(a, /^telemetryhub-line_1-[0-9a-f]{8}$/);
  assert.equal(await defaultClientId("line_1", { topics: ["a/+", "b/#"], qos: 1 }), a, "order");
  assert.notEqual(await defaultClientId("line_1", { topics: ["a/+"], qos: 1 }), a);
  assert.notEqual(await defaultClientId("line_1", { topics: ["b/#", "a/+"], qos: 2 }), a);
});

/**
 * A foreign producer that only does `RPUSH {prefix}:tasks '<task JSON>'`
 * (redis-cli, the seed system): its tasks run, its garbage is dead-lettered
 * with the reason and the worker carries on.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { RedisBroker } from "../plugins/redis/mod.ts";
import { Buffer } from "node:buffer";
import { recording, recordings } from "./_fixtures/plugins.ts";
import {
  client,
  deleteKeys,
  HAVE_REDIS,
  randomPrefix,
  REDIS_URL,
} from "./_fixtures/redis_server.ts";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";

/** A processor on Redis keys under `prefix`, recording what it handles under `prefix`. */
function processorYaml(prefix: string): string {
  return `
role: processor
admin: { enabled: false }
brokers:
  r:
    type: redis
    config: { url: "${REDIS_URL}", prefix: ${prefix}, task_key: "${prefix}:task:{id}", poll_interval: 20ms }
handlers:
  rec: { type: record, config: { key: ${prefix} } }
pipelines:
  main: { via: r, task_type: telemetry.analyze, handlers: [rec] }
`;
}

Deno.test({
  name:
    "redis foreign producer: a raw RPUSH seed task is processed and a malformed one dead-lettered with its reason",
  ignore: !HAVE_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const prefix = randomPrefix("foreign");
    const { runtime } = await createRuntime(processorYaml(prefix));
    const redis = client();
    try {
      runtime.start();
      await redis.rpush(
        `${prefix}:tasks`,
        '{"id":"seed-1","type":"telemetry.analyze","payload":{"device":"boiler","metric":"temp","value":71.5,"ts":1700000000000,"seq":7}}',
        '{"id":"seed-2","type":"telemetry.analyze","payload":',
        '{"id":"seed-3","type":"telemetry.analyze","payload":{"device":"boiler","metric":"temp","value":72,"ts":1700000000001,"seq":8}}',
      );
      const rec = recording(prefix);
      await waitFor(() => rec.seen.length === 2, "both good tasks", 10_000);
      assert.deepEqual(rec.seen, ["boiler/temp/7", "boiler/temp/8"]);
      const broker = runtime.brokers.get("r") as RedisBroker;
      await waitFor(async () => (await broker.depth()).dead === 1, "the dead letter");
      const [letter] = (await broker.listDeadLetters({})).items;
      assert.match(letter!.error.message, /Task is not valid JSON/);
      assert.equal(letter!.error.permanent, true);
      assert.equal(letter!.raw, '{"id":"seed-2","type":"telemetry.analyze","payload":');
      assert.equal(await redis.llen(`${prefix}:dlq`), 1);
    } finally {
      redis.disconnect();
      await runtime.stop();
      recordings.delete(prefix);
      await deleteKeys(prefix);
    }
  },
});

Deno.test({
  name:
    "redis foreign producer: a binary element is dead-lettered with its exact bytes and the worker carries on",
  ignore: !HAVE_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const prefix = randomPrefix("binary");
    const { runtime } = await createRuntime(processorYaml(prefix));
    const redis = client();
    // Not UTF-8: a lone continuation byte, an overlong NUL, a truncated sequence, and a NUL.
    const binary = Buffer.from([0x7b, 0x80, 0xc0, 0x80, 0xff, 0x00, 0xe2, 0x82, 0x7d]);
    // Valid JSON around bytes that are not UTF-8: still not a task.
    const inJson = Buffer.concat([
      Buffer.from('{"id":"bin-2","type":"telemetry.analyze","payload":"'),
      Buffer.from([0xfe, 0xff]),
      Buffer.from('"}'),
    ]);
    const good = (seq: number) =>
      JSON.stringify({
        id: `good-${seq}`,
        type: "telemetry.analyze",
        payload: { device: "boiler", metric: "temp", value: seq, ts: 1_700_000_000_000 + seq, seq },
      });
    try {
      runtime.start();
      await redis.rpush(`${prefix}:tasks`, binary, good(1), inJson, good(2));
      const rec = recording(prefix);
      await waitFor(() => rec.seen.length === 2, "both good tasks", 10_000);
      assert.deepEqual(rec.seen, ["boiler/temp/1", "boiler/temp/2"]);
      const broker = runtime.brokers.get("r") as RedisBroker;
      await waitFor(async () => (await broker.depth()).dead === 2, "two dead letters");
      const { items } = await broker.listDeadLetters({});
      assert.deepEqual(items.map((l) => l.raw_base64), [
        binary.toString("base64"),
        inJson.toString("base64"),
      ]);
      for (const letter of items) {
        assert.equal(letter.raw, undefined);
        assert.match(letter.error.message, /not valid UTF-8/);
        assert.equal(letter.error.permanent, true);
      }
      await waitFor(
        async () => (await processingLists(redis, prefix)).length === 0,
        "no processing list",
      );
      assert.equal(await redis.llen(`${prefix}:tasks`), 0);
      // Replay pushes the bytes back verbatim: they are dead-lettered again, unchanged.
      assert.equal(await broker.replayDeadLetters({}), 2);
      await waitFor(async () => (await broker.depth()).dead === 2, "dead-lettered again");
      const again = await broker.listDeadLetters({});
      assert.deepEqual(
        again.items.map((l) => l.raw_base64).sort(),
        items.map((l) => l.raw_base64).sort(),
      );
      assert.equal(await broker.purgeDeadLetters({}), 2);
      assert.equal(await redis.llen(`${prefix}:dlq`), 0);
    } finally {
      await runtime.stop();
      assert.deepEqual(await processingLists(redis, prefix), [], "nothing left behind by the stop");
      redis.disconnect();
      recordings.delete(prefix);
      await deleteKeys(prefix);
    }
  },
});

/** The processing lists under `prefix` that hold anything. */
async function processingLists(redis: ReturnType<typeof client>, prefix: string) {
  const keys = await redis.keys(`${prefix}:processing:*`);
  const held = [];
  for (const key of keys) if (await redis.llen(key) > 0) held.push(key);
  return held;
}

Deno.test({
  name:
    "redis foreign producer: a task nested too deep to encode again is dead-lettered with its raw text",
  ignore: !HAVE_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const prefix = randomPrefix("deep");
    const { runtime } = await createRuntime(processorYaml(prefix));
    const redis = client();
    try {
      runtime.start();
      const deep = "[".repeat(100_000) + "]".repeat(100_000);
      const element = `{"id":"deep-1","type":"other.type","payload":${deep}}`;
      await redis.rpush(
        `${prefix}:tasks`,
        element,
        '{"id":"ok-1","type":"telemetry.analyze","payload":{"device":"d","metric":"m","value":1,"ts":1}}',
      );
      const broker = runtime.brokers.get("r") as RedisBroker;
      await waitFor(async () => (await broker.depth()).dead === 1, "the dead letter");
      await waitFor(() => recording(prefix).seen.length === 1, "the good task");
      const [letter] = (await broker.listDeadLetters({})).items;
      assert.equal(letter!.raw, element);
      assert.match(letter!.error.message, /Unknown task type "other.type"/);
      assert.equal((await broker.depth()).inflight, 0);
    } finally {
      redis.disconnect();
      await runtime.stop();
      await deleteKeys(prefix);
    }
  },
});

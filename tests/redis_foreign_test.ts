/**
 * A foreign producer that only does `RPUSH {prefix}:tasks '<task JSON>'`
 * (redis-cli, the seed system): its tasks run, its garbage is dead-lettered
 * with the reason and the worker carries on.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { RedisBroker } from "../plugins/redis/mod.ts";
import { recording, recordings } from "./_fixtures/plugins.ts";
import {
  client,
  deleteKeys,
  HAVE_REDIS,
  randomPrefix,
  REDIS_URL,
} from "./_fixtures/redis_server.ts";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";

Deno.test({
  name:
    "redis foreign producer: a raw RPUSH seed task is processed and a malformed one dead-lettered with its reason",
  ignore: !HAVE_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const prefix = randomPrefix("foreign");
    const { runtime } = await createRuntime(`
role: processor
admin: { enabled: false }
devices:
  dev: { type: fixed, config: { count: 0 } }
brokers:
  r:
    type: redis
    config: { url: "${REDIS_URL}", prefix: ${prefix}, task_key: "${prefix}:task:{id}", poll_interval: 20ms }
handlers:
  rec: { type: record, config: { key: ${prefix} } }
pipelines:
  main: { from: [dev], via: r, task_type: telemetry.analyze, handlers: [rec] }
`);
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

/**
 * An acknowledgement means the broker holds the samples: with a durable
 * broker (Redis) an HTTP 202 comes only once the task is in Redis, so a
 * crash of the hub after the 202 loses nothing; while Redis is down the
 * request waits instead of being acknowledged.
 *
 * @module
 */
import assert from "node:assert/strict";
import { adminFixture, stopQuietly } from "./_fixtures/admin.ts";
import {
  client,
  deleteKeys,
  HAVE_REDIS,
  randomPrefix,
  REDIS_URL,
  startPrivateRedis,
} from "./_fixtures/redis_server.ts";
import { waitFor } from "./_fixtures/runtime.ts";

function hubYaml(url: string, prefix: string): string {
  return `
role: hub
brokers:
  r:
    type: redis
    config: { url: "${url}", prefix: ${prefix}, task_key: "${prefix}:task:{id}", connect_timeout: 1s }
pipelines:
  main: { via: r, handlers: [], batch: { max_samples: 1000, max_wait: 10m } }
`;
}

const post = (body: unknown) => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});

Deno.test({
  name: "with Redis, a 202 comes once the task is in Redis: at once, not after max_wait",
  ignore: !HAVE_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const prefix = randomPrefix("ack");
    const { app, runtime } = await adminFixture(hubYaml(REDIS_URL, prefix));
    const redis = client();
    try {
      runtime.start();
      const res = await app.request(
        "/api/v1/samples?pipeline=main",
        post([{ device: "d", metric: "t", value: 1 }, { device: "d", metric: "t", value: 2 }]),
      );
      assert.equal(res.status, 202);
      // Already in Redis when the 202 arrives (and not held back for max_wait, 10 minutes).
      assert.equal(await redis.llen(`${prefix}:tasks`), 1);
    } finally {
      redis.disconnect();
      await stopQuietly(runtime);
      await deleteKeys(prefix);
    }
  },
});

Deno.test({
  name: "with Redis down, a POST is not acknowledged until Redis holds its samples",
  ignore: !HAVE_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await startPrivateRedis();
    const prefix = randomPrefix("ackdown");
    const { app, runtime, lines } = await adminFixture(hubYaml(server.url, prefix));
    try {
      runtime.start();
      await server.stop();
      let answered: Response | undefined;
      const request = Promise.resolve(app.request(
        "/api/v1/samples?pipeline=main",
        post({ device: "d", metric: "t", value: 1, ts: 1 }),
      )).then((res: Response) => answered = res);
      await waitFor(
        () => lines.some((l) => l.msg === "Cannot enqueue tasks; will keep trying"),
        "the gateway failing to enqueue",
      );
      assert.equal(answered, undefined, "no 202 while Redis does not hold the samples");
      await server.start();
      await request;
      assert.equal(answered!.status, 202);
      const redis = client(server.url);
      try {
        assert.equal(await redis.llen(`${prefix}:tasks`), 1);
      } finally {
        redis.disconnect();
      }
    } finally {
      await stopQuietly(runtime);
      await server.dispose();
    }
  },
});

import assert from "node:assert/strict";
import { adminFixture } from "./_fixtures/admin.ts";
import { startPrivateRedis } from "./_fixtures/redis_server.ts";
import { waitFor } from "./_fixtures/runtime.ts";

Deno.test("readyz flips to 503 while Redis is stopped and back to 200 when it returns", async () => {
  const redis = await startPrivateRedis();
  const { runtime, app } = await adminFixture(`
devices: { d: { type: fixed, config: { count: 0 } } }
brokers:
  fleet: { type: redis, config: { url: "${redis.url}", prefix: readiness } }
handlers: { rec: { type: record, config: { key: readiness } } }
pipelines: { main: { from: [d], via: fleet, handlers: [rec] } }
`);
  try {
    runtime.start();
    const status = async () => (await app.request("/readyz")).status;
    await waitFor(async () => await status() === 200, "ready with Redis up");
    await redis.stop();
    await waitFor(async () => await status() === 503, "not ready with Redis down");
    const body = await (await app.request("/readyz")).json();
    assert.equal(body.not_ready[0].name, "broker:fleet");
    assert.match(body.not_ready[0].reason, /unreachable/);
    await redis.restart();
    await waitFor(async () => await status() === 200, "ready again", 20_000);
  } finally {
    await runtime.stop();
    await redis.dispose();
  }
});

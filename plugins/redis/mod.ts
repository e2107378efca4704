/**
 * The `redis` broker: a durable task queue on Redis lists, shared by any
 * number of hub and processor processes (split roles, fleets). Delivery is
 * at-least-once through a reliable-queue pattern: per-consumer processing
 * lists, leases renewed by a heartbeat, and recovery of expired leases.
 *
 * @example
 * ```ts ignore
 * import redis from "./mod.ts";
 * import { testContext } from "../../core/testing.ts";
 * const broker = await redis.create(
 *   redis.config.parse({ url: "redis://127.0.0.1:6379", prefix: "demo" }),
 *   testContext(),
 * );
 * await broker.enqueue([{ id: "t1", type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 }]);
 * ```
 *
 * @module
 */
import { defineBroker } from "../../core/mod.ts";
import { redisBrokerConfig } from "./_config.ts";
import { RedisBroker } from "./_broker.ts";

export { redisBrokerConfig, type RedisBrokerOptions } from "./_config.ts";
export { RedisBroker } from "./_broker.ts";
export { redisKeys } from "./_codec.ts";

export default defineBroker({
  name: "redis",
  summary: "Durable, shared task queue on Redis lists (at-least-once, split roles)",
  description: "Keeps tasks in Redis so hubs and processors can run as separate processes on " +
    "separate machines. Uses the key layout of the original design (`telemetry:tasks`, " +
    "`telemetry:dlq`, `task:{id}`), so a producer that only does `RPUSH telemetry:tasks` " +
    "keeps working. Run Redis with `maxmemory-policy noeviction` and AOF persistence.",
  config: redisBrokerConfig,
  shared: true,
  async create(config, ctx) {
    // Loaded here, not at the top: listing plugins or writing docs needs no Redis client.
    const { Redis, Cluster } = await import("ioredis");
    const broker = new RedisBroker(config, ctx, { Redis, Cluster });
    await broker.ready(config.connect_timeout);
    return broker;
  },
});

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
import { defineBroker, duration, z } from "../../core/mod.ts";
import { RedisBroker } from "./_broker.ts";

export { RedisBroker } from "./_broker.ts";
export { redisKeys } from "./_codec.ts";

/** The `config:` block of a `type: redis` broker. */
export const redisBrokerConfig = z.strictObject({
  url: z.string().min(1).default("redis://127.0.0.1:6379").describe(
    "Redis URL (redis:// or rediss://, optionally with user, password and database number)",
  ),
  prefix: z.string().regex(/^[^\s{}]+$/, {
    error: "Prefix must not contain spaces or braces",
  }).default("telemetry").describe(
    "Start of every queue key (`{prefix}:tasks`, `{prefix}:dlq`, …), so several pipelines " +
      "share one Redis",
  ),
  task_key: z.string().regex(/^[^{}]*\{id\}[^{}]*$/, {
    error: 'Task key pattern must contain "{id}" exactly once',
  }).default("task:{id}").describe(
    "Key of each task's state hash; `{id}` is replaced by the task id",
  ),
  capacity: z.int().min(1).optional().describe(
    "Most tasks waiting in the queues. When full, enqueue() waits for room, which slows " +
      "the hubs down (backpressure) instead of growing Redis memory; retries, releases and " +
      "replays are always accepted. Unset means no limit",
  ),
  retention: duration().prefault("0ms").describe(
    "How long the record of a completed task stays readable by id; 0 deletes it at once " +
      "(as the original design does), which keeps Redis memory flat",
  ),
  max_dead_letters: z.int().min(1).default(10_000).describe(
    "Most dead letters kept; beyond it the oldest is dropped (with its task record) and a " +
      "warning logged, so a poison stream cannot fill Redis",
  ),
  lease: duration({ timer: true }).prefault("5s").describe(
    "How long a consumer's reserved tasks stay its own without a heartbeat; a killed " +
      "processor's tasks are requeued this long after its last heartbeat",
  ),
  recover_interval: duration({ timer: true }).prefault("1s").describe(
    "How often each processor looks for expired leases and requeues their tasks",
  ),
  poll_interval: duration({ timer: true }).prefault("100ms").describe(
    "Longest an idle consumer blocks before it looks at due retries and at the high and low " +
      "queues again (high and low tasks normally wake it at once)",
  ),
  connect_timeout: duration({ timer: true }).prefault("2s").describe(
    "How long start-up waits for Redis before going on and retrying in the background",
  ),
});

/** Validated options of the Redis broker (the parsed `config:` block). */
export type RedisBrokerOptions = z.output<typeof redisBrokerConfig>;

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
    const { Redis } = await import("ioredis");
    const broker = new RedisBroker(config, ctx, Redis);
    await broker.ready(config.connect_timeout);
    return broker;
  },
});

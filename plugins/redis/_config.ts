/**
 * The `config:` block of the `redis` broker: its schema (types, defaults,
 * validation and the docs all come from it) and the options type it parses to.
 *
 * @module
 */
import { duration, z } from "../../core/mod.ts";

/** Where the broker connects when neither `url` nor `sentinels` is given. */
export const DEFAULT_URL = "redis://127.0.0.1:6379";

/** `host:port` of a Sentinel or cluster node. */
const hostPort = z.string().regex(/^\S+:\d{1,5}$/, {
  error: 'Expected "host:port"',
});

/** The `config:` block of a `type: redis` broker. */
export const redisBrokerConfig = z.strictObject({
  url: z.string().min(1).optional().describe(
    "Redis URL (redis:// or rediss://, optionally with user, password and database number); " +
      `${DEFAULT_URL} when neither \`url\` nor \`sentinels\` is given. Put a password in ` +
      "as ${REDIS_PASSWORD}",
  ),
  sentinels: z.array(hostPort).min(1).optional().describe(
    'Sentinels to ask for the current master ("host:port" each), instead of `url`: on a ' +
      "failover the broker reconnects to the new master by itself",
  ),
  name: z.string().min(1).optional().describe(
    "Name of the master the sentinels monitor (required with `sentinels`)",
  ),
  cluster: z.array(hostPort).min(1).optional().describe(
    'Nodes of a Redis Cluster to start from ("host:port" each), instead of `url`: tasks are ' +
      "spread over `shards` queue shards, so N masters carry about N times the traffic",
  ),
  shards: z.int().min(1).max(1024).default(12).describe(
    "Queue shards with `cluster` (each one hash slot, spread evenly over the slot ranges); " +
      "more shards than masters keeps the load even when masters are added. Every process " +
      "of a fleet must use the same number",
  ),
  username: z.string().min(1).optional().describe(
    "User of the Redis servers (ACL) found through `sentinels` or `cluster`",
  ),
  password: z.string().min(1).optional().describe(
    "Password of the Redis servers found through `sentinels` or `cluster`; use ${REDIS_PASSWORD}",
  ),
  sentinel_password: z.string().min(1).optional().describe(
    "Password of the sentinels themselves, when they require one; use ${SENTINEL_PASSWORD}",
  ),
  wait_replicas: z.int().min(0).default(0).describe(
    "Replicas that must hold a batch before it counts as enqueued (Redis `WAIT`): with 1 or " +
      "more, a failover cannot lose a batch the hub acknowledged. 0 acknowledges once the " +
      "master has it (replication is asynchronous)",
  ),
  wait_timeout: duration({ timer: true }).prefault("1s").describe(
    "How long a batch waits for `wait_replicas`; when fewer replicas confirm in time, the " +
      "enqueue fails and the hub sends the batch again (it is not added twice)",
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
}).superRefine((config, ctx) => {
  const given = (["url", "sentinels", "cluster"] as const).filter((f) => config[f] !== undefined);
  if (given.length > 1) {
    ctx.addIssue({
      code: "custom",
      path: [given[1]!],
      message: "Give one of `url`, `sentinels` or `cluster`, not several",
    });
  }
  if (config.sentinels && config.name === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["name"],
      message: "`sentinels` needs the `name` of the master they monitor",
    });
  }
  for (const field of ["name", "sentinel_password"] as const) {
    if (!config.sentinels && config[field] !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [field],
        message: `\`${field}\` is only used with \`sentinels\``,
      });
    }
  }
  for (const field of ["username", "password"] as const) {
    if (!config.sentinels && !config.cluster && config[field] !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [field],
        message: `\`${field}\` is only used with \`sentinels\` or \`cluster\` ` +
          "(put credentials in `url`)",
      });
    }
  }
});

/** Validated options of the Redis broker (the parsed `config:` block). */
export type RedisBrokerOptions = z.output<typeof redisBrokerConfig>;

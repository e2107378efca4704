/**
 * Where the broker's connections go: one server by URL, the current master
 * as the sentinels report it, or a Redis Cluster. ioredis does the Sentinel
 * and Cluster protocols (asking for the master, following a failover,
 * routing by slot, following MOVED); this only maps the config onto its
 * options.
 *
 * @module
 */
import type { Cluster, ClusterOptions, Redis, RedisOptions } from "ioredis";
import { redactText } from "../../core/mod.ts";
import { DEFAULT_URL, type RedisBrokerOptions } from "./_config.ts";

/** ioredis's options, without the reply mapping its constructor types separately. */
export type ConnectionOptions = Omit<RedisOptions, "replyMapping">;

/** The parts of ioredis the broker uses, passed in so that it is loaded only when needed. */
export interface IoRedis {
  Redis: typeof Redis;
  Cluster: typeof Cluster;
}

/** How to open one connection, and how to name the target in messages. */
export interface Topology {
  /** The target for messages, without secrets (`redis://app:***@host`, `redis-sentinel://…`). */
  where: string;
  /** Whether connections are to a Redis Cluster (commands routed by key slot). */
  cluster: boolean;
  /** Opens a connection with the broker's own options on top of the target's. */
  open(io: IoRedis, options: ConnectionOptions): Redis;
}

/** `"host:port"` → ioredis's `{ host, port }`. */
export function hostPort(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(":");
  return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
}

function credentials(o: RedisBrokerOptions): ConnectionOptions {
  const out: ConnectionOptions = {};
  if (o.username !== undefined) out.username = o.username;
  if (o.password !== undefined) out.password = o.password;
  return out;
}

/** The topology a parsed `config:` block describes. */
export function topology(o: RedisBrokerOptions): Topology {
  if (o.sentinels) {
    const target: ConnectionOptions = {
      sentinels: o.sentinels.map(hostPort),
      name: o.name!,
      role: "master",
      ...credentials(o),
    };
    if (o.sentinel_password !== undefined) target.sentinelPassword = o.sentinel_password;
    return {
      where: `redis-sentinel://${o.sentinels.join(",")}/${o.name}`,
      cluster: false,
      open: (io, { retryStrategy, ...options }) =>
        new io.Redis({
          ...target,
          ...options,
          // A failover names the new master within a few seconds: try again at
          // least every half second, so clients follow it within that of the switch.
          retryStrategy: (times) => Math.min(retryStrategy?.(times) ?? 500, 500),
        }),
    };
  }
  if (o.cluster) {
    const nodes = o.cluster.map(hostPort);
    return {
      where: `redis-cluster://${o.cluster.join(",")}`,
      cluster: true,
      open(io, { retryStrategy, enableOfflineQueue, connectionName, ...node }) {
        const redisOptions: Omit<NonNullable<ClusterOptions["redisOptions"]>, "replyMapping"> = {
          ...node,
          ...credentials(o),
        };
        if (connectionName !== undefined) redisOptions.connectionName = connectionName;
        const options: Omit<ClusterOptions, "redisOptions"> = {
          enableOfflineQueue: enableOfflineQueue ?? false,
          // A master's failover: retry the command on the slot's new owner.
          retryDelayOnFailover: 100,
          retryDelayOnClusterDown: 100,
          scaleReads: "master",
        };
        if (retryStrategy) options.clusterRetryStrategy = (times) => retryStrategy(times) ?? null;
        // A Cluster has the commands the broker sends (each routed by its first
        // key) and the same events and status; the broker keeps what differs
        // (pipelines of one slot, no CLIENT UNBLOCK, SCAN per node) in mind.
        return new io.Cluster(nodes, { ...options, redisOptions }) as unknown as Redis;
      },
    };
  }
  const url = o.url ?? DEFAULT_URL;
  return {
    where: redactText(url),
    cluster: false,
    open: (io, options) => new io.Redis(url, options),
  };
}

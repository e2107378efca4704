/**
 * Where the broker's connections go: one server by URL, or the current
 * master as the sentinels report it. ioredis does the Sentinel protocol
 * (asking for the master, following a failover); this only maps the config
 * onto its options.
 *
 * @module
 */
import type { Redis, RedisOptions } from "ioredis";
import { redactText } from "../../core/mod.ts";
import { DEFAULT_URL, type RedisBrokerOptions } from "./_config.ts";

/** ioredis's options, without the reply mapping its constructor types separately. */
export type ConnectionOptions = Omit<RedisOptions, "replyMapping">;

/** How to open one connection, and how to name the target in messages. */
export interface Topology {
  /** The target for messages, without secrets (`redis://app:***@host`, `sentinel "mymaster"`). */
  where: string;
  /** Opens a connection with the broker's own options on top of the target's. */
  open(RedisClass: typeof Redis, options: ConnectionOptions): Redis;
}

/** `"host:port"` → ioredis's `{ host, port }`. */
export function hostPort(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(":");
  return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
}

/** The topology a parsed `config:` block describes. */
export function topology(o: RedisBrokerOptions): Topology {
  if (o.sentinels) {
    const sentinels = o.sentinels.map(hostPort);
    const target: ConnectionOptions = { sentinels, name: o.name!, role: "master" };
    if (o.username !== undefined) target.username = o.username;
    if (o.password !== undefined) target.password = o.password;
    if (o.sentinel_password !== undefined) target.sentinelPassword = o.sentinel_password;
    return {
      where: `redis-sentinel://${o.sentinels.join(",")}/${o.name}`,
      open: (RedisClass, options) => new RedisClass({ ...target, ...options }),
    };
  }
  const url = o.url ?? DEFAULT_URL;
  return { where: redactText(url), open: (RedisClass, options) => new RedisClass(url, options) };
}

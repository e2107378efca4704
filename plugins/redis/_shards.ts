/**
 * Queue shards for Redis Cluster. Each shard is the whole single-instance
 * key layout under its own hash tag (`{telemetry:3}:tasks`,
 * `{telemetry:3}:task:<id>`, …), so every key a Lua script touches is in
 * one slot; shard i's tag is chosen to hash into the i-th of N equal slot
 * ranges, so the shards spread over the masters as the slots do.
 *
 * @module
 */
import keySlot from "cluster-key-slot";
import { type RedisKeys, redisKeys } from "./_codec.ts";

/** Hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

/** The hash slot of a key (CRC16 of its hash tag, or of the key). */
export function slotOf(key: string): number {
  return (keySlot as (key: string) => number)(key);
}

/**
 * The hash tags of `count` shards: shard i's tag is `{prefix}:{i}`, with a
 * suffix (`.1`, `.2`, …) when needed so that it falls in slots
 * `[i·16384/count, (i+1)·16384/count)`. The same prefix and count always
 * give the same tags, in every process.
 */
export function shardTags(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const lo = Math.floor((i * CLUSTER_SLOTS) / count);
    const hi = Math.floor(((i + 1) * CLUSTER_SLOTS) / count);
    for (let k = 0;; k++) {
      const tag = k === 0 ? `${prefix}:${i}` : `${prefix}:${i}.${k}`;
      const slot = slotOf(tag);
      if (slot >= lo && slot < hi) return tag;
    }
  });
}

/** The key layout of each shard: the single-instance layout under the shard's hash tag. */
export function shardKeys(prefix: string, count: number): RedisKeys[] {
  return shardTags(prefix, count).map((tag) => redisKeys(`{${tag}}`, `{${tag}}:task:{id}`));
}

/**
 * The shard a task goes to: a hash of its id, so tasks spread evenly, the
 * same batch sent again (after a lost reply) lands where it was and is
 * recognised, and every process agrees.
 */
export function shardOf(id: string, count: number): number {
  return count === 1 ? 0 : slotOf(id) % count;
}

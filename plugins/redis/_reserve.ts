/**
 * Parts of the Redis broker's enqueue and reserve paths: the enqueue
 * script's arguments, the reserve script's call, turning list elements into
 * deliveries, dating foreign tasks, ordering several shards' deliveries.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import {
  compactPayload,
  type Delivery,
  errorMessage,
  PermanentError,
  type Task,
} from "../../core/mod.ts";
import { decodeElement, encodeTask, QUEUE_INDEX, type RedisKeys } from "./_codec.ts";
import type { RedisConnections, ScriptArg } from "./_connections.ts";
import { shardOf } from "./_shards.ts";

/** Tasks to enqueue on a broker with `shards` queue shards, by shard. */
export interface EnqueueArgs {
  /** The enqueue script's arguments of each shard (7 per task). */
  args: ScriptArg[][];
  /** Whether a task is not of normal priority (idle consumers block on normal only). */
  wake: boolean;
}

/**
 * The enqueue script's arguments of `tasks`, each on the shard of its id (so
 * a batch sent again lands where it is recognised). Throws
 * {@link PermanentError} for a task that cannot be encoded.
 */
export function enqueueArgs(tasks: readonly Task[], shards: number): EnqueueArgs {
  const args: ScriptArg[][] = Array.from({ length: shards }, () => []);
  let wake = false;
  for (const task of tasks) {
    const priority = task.priority ?? "normal";
    const index = QUEUE_INDEX[priority];
    if (index === undefined) {
      throw new Error(`Task "${task.id}" has an unknown priority "${String(priority)}"`);
    }
    if (index !== 2) wake = true;
    let body: string;
    try {
      body = encodeTask(task, compactPayload(task.payload, task.checked === true));
    } catch (error) {
      // Content, not an outage: retrying would fail the same way forever.
      throw new PermanentError(`Cannot encode task "${task.id}": ${errorMessage(error)}`, {
        cause: error,
      });
    }
    args[shardOf(task.id, shards)]!.push(
      task.id,
      index,
      body,
      task.type,
      task.attempts,
      task.created_at,
      task.pipeline ?? "",
    );
  }
  return { args, wake };
}

/** Most delayed tasks one reserve call moves to their queues. */
const PROMOTE_PER_RESERVE = 500;

/**
 * Runs the reserve script on one shard: up to `max` elements for `holder`,
 * and the consumer's next priority round-robin slot. With `landed`, the
 * element BLMOVE already moved is only marked assigned (none returned).
 */
export async function reserveScript(conn: RedisConnections, keys: RedisKeys, o: {
  consumer: string;
  holder: string;
  max: number;
  now: number;
  lease: number;
  slot: number;
  landed: boolean;
}): Promise<{ slot: number; elements: Buffer[] }> {
  const reply = await conn.script("thReserve", [
    ...keys.queues,
    keys.processing(o.holder),
    keys.delayed,
    keys.lease(o.holder),
    keys.consumers,
  ], [
    o.max,
    o.now,
    o.holder,
    o.lease,
    keys.taskPrefix,
    keys.taskSuffix,
    o.slot,
    o.landed ? "1" : "0",
    o.consumer,
    PROMOTE_PER_RESERVE,
  ], true) as [number, ...Buffer[]];
  // A landed element was delivered already (it would be the reply's first).
  return { slot: Number(reply[0]), elements: o.landed ? [] : reply.slice(1) as Buffer[] };
}
import { Receipt } from "./_settle.ts";

/**
 * Gives tasks that came without `created_at` the time their record was
 * started (by the reserve script, on first delivery), so a redelivery has
 * the same `created_at`: the identity of their samples without `ts`
 * derives from it. Only foreign producers' tasks pay this round trip.
 */
export async function datedDeliveries(
  conn: RedisConnections,
  keys: RedisKeys,
  deliveries: Delivery[],
): Promise<Delivery[]> {
  const undated = deliveries.filter((d) => (d.receipt as Receipt).undated);
  if (undated.length === 0) return deliveries;
  // One shard's keys share a slot, so this pipeline goes to one node.
  const pipeline = conn.redis.pipeline();
  for (const d of undated) {
    pipeline.hget(keys.taskPrefix + d.task.id + keys.taskSuffix, "created_at");
  }
  const replies = (await pipeline.exec()) ?? [];
  undated.forEach((d, i) => {
    const value = Number(replies[i]?.[1]);
    if (Number.isFinite(value)) d.task.created_at = value;
  });
  return deliveries;
}

/**
 * The delivery of a list element of `owner`'s. Elements are read as bytes,
 * so one that is not UTF-8 is kept exactly: settling it (removing it from
 * the processing list, dead-lettering it) needs those bytes, not their
 * lossy decoding.
 */
export function toDelivery(
  owner: ConstructorParameters<typeof Receipt>[0],
  shard: number,
  element: Buffer,
  holder: string,
  now: number,
): Delivery {
  const decoded = decodeElement(element, now);
  const receipt = new Receipt(owner, decoded.raw, holder, shard);
  receipt.bytes = decoded.bytes;
  if ("undated" in decoded) receipt.undated = true;
  const delivery: Delivery = { task: decoded.task, receipt };
  if (decoded.invalid !== undefined) delivery.invalid = decoded.invalid;
  return delivery;
}

/** Deliveries sorted by priority (high, normal, low), stable within one. */
export function byPriority(deliveries: Delivery[]): Delivery[] {
  const rank = (d: Delivery) => QUEUE_INDEX[d.task.priority ?? "normal"] ?? 2;
  return deliveries.sort((a, b) => rank(a) - rank(b));
}

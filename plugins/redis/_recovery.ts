/**
 * Leases and recovery: a heartbeat renews the lease of each consumer this
 * instance reserves for; recovery returns the processing lists of
 * consumers whose lease expired (or that no lease covers) to the front of
 * the queues.
 *
 * @module
 */
import { errorMessage, type Logger } from "../../core/mod.ts";
import type { RedisKeys } from "./_codec.ts";
import type { RedisBrokerOptions } from "./_config.ts";
import type { RedisConnections } from "./_connections.ts";

/** Keys each recovery pass scans for processing lists no consumer entry names. */
const SWEEP_COUNT = 1000;

/** The leases of one broker instance's consumers, and recovery of expired ones. */
export class Leases {
  readonly #conn: RedisConnections;
  /** The key layout of each queue shard. */
  readonly #shards: readonly RedisKeys[];
  readonly #o: Pick<RedisBrokerOptions, "lease" | "recover_interval">;
  /** Consumers this instance reserved for. */
  readonly #consumers: ReadonlyMap<string, unknown>;
  readonly #log: Logger;
  readonly #now: () => number;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #recovery: ReturnType<typeof setInterval> | undefined;
  /** SCAN cursor of the sweep for processing lists no consumer entry names. */
  #sweep = "0";
  /** The master the sweep scans now (each master of a cluster in turn). */
  #sweepNode = 0;

  constructor(
    conn: RedisConnections,
    shards: readonly RedisKeys[],
    options: Pick<RedisBrokerOptions, "lease" | "recover_interval">,
    consumers: ReadonlyMap<string, unknown>,
    log: Logger,
    now: () => number,
  ) {
    this.#conn = conn;
    this.#shards = shards;
    this.#o = options;
    this.#consumers = consumers;
    this.#log = log;
    this.#now = now;
  }

  /** Starts renewing leases and recovering expired ones, once. */
  start(): void {
    if (this.#heartbeat !== undefined) return;
    this.#heartbeat = setInterval(() => void this.#renew(), Math.max(50, this.#o.lease / 3));
    this.#recovery = setInterval(() => void this.recover(), this.#o.recover_interval);
  }

  async #renew(): Promise<void> {
    if (this.#conn.redis.status !== "ready" || this.#consumers.size === 0) return;
    // One pipeline per shard: a cluster pipeline must stay within one slot.
    await Promise.all(this.#shards.map(async (keys) => {
      const pipeline = this.#conn.redis.pipeline();
      for (const consumer of this.#consumers.keys()) {
        pipeline.set(keys.lease(`${consumer}@${this.#conn.epoch}`), "1", "PX", this.#o.lease);
      }
      try {
        await pipeline.exec();
      } catch { /* down: the error handler logs it; leases lapse and recovery takes over */ }
    }));
  }

  /** Stops the timers. */
  stop(): void {
    clearInterval(this.#heartbeat);
    clearInterval(this.#recovery);
  }

  /**
   * Returns the tasks of consumers whose lease expired to the front of their
   * queues (and, with `force`, those of the named consumer keys). A
   * processing list that no consumer entry names and no lease covers (left
   * by a stop at the wrong moment) counts as expired; a scan finds those,
   * a slice of the keyspace per call. Runs every `recover_interval` while
   * this instance reserves. Returns how many tasks were requeued.
   */
  async recover(force: readonly string[] = []): Promise<number> {
    if (this.#conn.redis.status !== "ready") return 0;
    try {
      const found = force.length === 0 ? await this.#sweepStep() : new Map<number, string[]>();
      const counts = await Promise.all(this.#shards.map((keys, shard) =>
        this.#conn.script(
          "thRecover",
          [keys.consumers, ...keys.queues],
          [
            this.#now(),
            keys.prefix,
            keys.taskPrefix,
            keys.taskSuffix,
            force.length,
            ...force,
            ...found.get(shard) ?? [],
          ],
        ) as Promise<[number, number]>
      ));
      const tasks = counts.reduce((sum, [t]) => sum + t, 0);
      const consumers = counts.reduce((sum, [, c]) => sum + c, 0);
      if (tasks > 0 && force.length === 0) {
        this.#log.warn("Requeued tasks of consumers whose lease expired", {
          tasks,
          consumers,
        });
      }
      return tasks;
    } catch (error) {
      this.#log.debug("Recovery failed", { error: errorMessage(error) });
      return 0;
    }
  }

  /**
   * One step of a scan of the keyspace for processing lists (up to
   * {@link SWEEP_COUNT} keys a call, so each pass costs Redis little): a
   * list no consumer entry names, left by a stop at the wrong moment, is
   * otherwise never seen. A cluster's masters are scanned one after the
   * other. Returns the consumer key names found, by shard.
   */
  async #sweepStep(): Promise<Map<number, string[]>> {
    const masters = this.#conn.masters();
    const node = masters[this.#sweepNode % masters.length]!;
    const starts = this.#shards.map((keys) => keys.processing(""));
    const escape = (text: string) => text.replace(/[*?[\]\\]/g, "\\$&");
    // One shard: its own prefix. Several: what every shard's prefix starts with.
    const pattern = starts.length === 1
      ? `${escape(starts[0]!)}*`
      : `${escape(starts[0]!.slice(0, starts[0]!.indexOf(":") + 1))}*`;
    const [next, keys] = await node.scan(this.#sweep, "MATCH", pattern, "COUNT", SWEEP_COUNT);
    this.#sweep = next;
    if (next === "0") this.#sweepNode++;
    const found = new Map<number, string[]>();
    for (const key of keys) {
      const shard = starts.findIndex((start) => key.startsWith(start));
      if (shard < 0) continue;
      const list = found.get(shard) ?? [];
      list.push(key.slice(starts[shard]!.length));
      found.set(shard, list);
    }
    return found;
  }
}

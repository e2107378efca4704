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
  readonly #keys: RedisKeys;
  readonly #o: Pick<RedisBrokerOptions, "lease" | "recover_interval">;
  /** Consumers this instance reserved for. */
  readonly #consumers: ReadonlyMap<string, unknown>;
  readonly #log: Logger;
  readonly #now: () => number;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #recovery: ReturnType<typeof setInterval> | undefined;
  /** SCAN cursor of the sweep for processing lists no consumer entry names. */
  #sweep = "0";

  constructor(
    conn: RedisConnections,
    keys: RedisKeys,
    options: Pick<RedisBrokerOptions, "lease" | "recover_interval">,
    consumers: ReadonlyMap<string, unknown>,
    log: Logger,
    now: () => number,
  ) {
    this.#conn = conn;
    this.#keys = keys;
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
    const pipeline = this.#conn.redis.pipeline();
    for (const consumer of this.#consumers.keys()) {
      pipeline.set(this.#keys.lease(`${consumer}@${this.#conn.epoch}`), "1", "PX", this.#o.lease);
    }
    try {
      await pipeline.exec();
    } catch { /* down: the error handler logs it; leases lapse and recovery takes over */ }
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
    const keys = this.#keys;
    try {
      const found = force.length === 0 ? await this.#sweepStep() : [];
      const [tasks, consumers] = await this.#conn.script(
        "thRecover",
        [keys.consumers, ...keys.queues],
        [
          this.#now(),
          keys.prefix,
          keys.taskPrefix,
          keys.taskSuffix,
          force.length,
          ...force,
          ...found,
        ],
      ) as [number, number];
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
   * otherwise never seen. Returns the consumer key names found.
   */
  async #sweepStep(): Promise<string[]> {
    const start = this.#keys.processing("");
    const pattern = `${start.replace(/[*?[\]\\]/g, "\\$&")}*`;
    const [next, found] = await this.#conn.redis.scan(
      this.#sweep,
      "MATCH",
      pattern,
      "COUNT",
      SWEEP_COUNT,
    );
    this.#sweep = next;
    return found.map((key) => key.slice(start.length));
  }
}

/**
 * The Redis broker's engine: a reliable queue. Reserving moves tasks from
 * the priority lists into the consumer's own processing list (one Lua
 * script, or `BLMOVE` while waiting) and sets a lease key with a TTL that a
 * heartbeat renews; a recovery script returns the processing lists of
 * consumers whose lease expired (or that no lease covers) to the front of
 * the queues. Elements are read as bytes, so one that is not UTF-8 is
 * dead-lettered exactly as it came.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import {
  ALL_CAPABILITIES,
  type BrokerCapabilities,
  brokerClosedError,
  type BrokerDepth,
  type BrokerInstance,
  checkReserveSize,
  checkSettlements,
  checkStarts,
  closeOnAbort,
  type DeadLetterPage,
  type DeadLetterSelector,
  type Delivery,
  errorMessage,
  type Logger,
  ownReceipt,
  type PluginContext,
  type Settlement,
  type Task,
  type TaskRecord,
} from "../../core/mod.ts";
import { recordFromHash, type RedisKeys, redisKeys } from "./_codec.ts";
import { scriptError } from "./_scripts.ts";
import { byPriority, datedDeliveries, enqueueArgs, reserveScript, toDelivery } from "./_reserve.ts";
import { RedisConnections, type ScriptArg } from "./_connections.ts";
import { RedisDeadLetters, ShardedDeadLetters } from "./_dead_letters.ts";
import { Leases } from "./_recovery.ts";
import { Receipt, settleArgs, settleGroup } from "./_settle.ts";
import type { RedisBrokerOptions } from "./_config.ts";
import { type IoRedis, topology } from "./_topology.ts";
import { shardKeys, shardOf } from "./_shards.ts";

/** Pause before offering a batch again to full queues. */
const FULL_RETRY_MS = 5;

/** The dependencies a {@link RedisBroker} takes from its plugin context. */
export type RedisBrokerContext = Pick<PluginContext, "name" | "clock" | "logger" | "signal">;

/**
 * A {@link BrokerInstance} on Redis lists, shared by any number of hub and
 * processor processes. Created by the `redis` plugin.
 */
export class RedisBroker implements BrokerInstance {
  readonly shared = true;
  /** Everything; one order for the whole queue only with one shard. */
  readonly capabilities: Readonly<BrokerCapabilities>;
  // Once a task is in Redis it outlives this process; how it outlives Redis is its persistence.
  readonly durable = true;
  /**
   * The key layout of each queue shard: one shard with the original keys
   * on a standalone Redis or Sentinel; `shards` hash-tagged ones on a cluster.
   */
  readonly shards: readonly RedisKeys[];

  readonly #o: RedisBrokerOptions;
  readonly #name: string;
  readonly #ctx: RedisBrokerContext;
  readonly #log: Logger;
  /**
   * Consumers this instance reserved for, with their priority round-robin
   * slot in each shard and the shard they look at first next time.
   */
  readonly #consumers = new Map<string, { slots: number[]; next: number }>();
  #closed = false;
  readonly #leases: Leases;
  readonly #conn: RedisConnections;
  readonly #dlq: ShardedDeadLetters;
  readonly #stopListening: () => void;

  /**
   * `io` is ioredis, passed in so that the plugin loads it only when a
   * broker is created.
   */
  constructor(options: RedisBrokerOptions, ctx: RedisBrokerContext, io: IoRedis) {
    this.#o = options;
    this.#ctx = ctx;
    this.#name = ctx.name;
    this.#log = ctx.logger;
    const where = topology(options);
    this.shards = where.cluster
      ? shardKeys(options.prefix, options.shards)
      : [redisKeys(options.prefix, options.task_key)];
    this.capabilities = this.shards.length === 1
      ? ALL_CAPABILITIES
      : { ...ALL_CAPABILITIES, ordered: false };
    this.#conn = new RedisConnections({
      topology: where,
      name: ctx.name,
      wakeChannel: this.shards[0]!.wake,
      logger: ctx.logger,
      io,
    });
    this.#dlq = new ShardedDeadLetters(
      this.shards.map((keys) => new RedisDeadLetters(this.#conn, keys, () => this.#now())),
    );
    this.#leases = new Leases(
      this.#conn,
      this.shards,
      options,
      this.#consumers,
      ctx.logger,
      () => this.#now(),
    );
    this.#stopListening = closeOnAbort(ctx.signal, this);
  }

  /** Waits up to `ms` for the first connection; logs and carries on when Redis is down. */
  async ready(ms: number): Promise<void> {
    await this.#conn.whenReady(this.#conn.redis, ms);
    // Opened now, so the first batch does not find it still connecting.
    if (this.#o.wait_replicas > 0) await this.#conn.whenReady(this.#conn.producer, ms);
    if ((this.#conn.redis.status as string) !== "ready") {
      this.#log.error("Redis is unreachable; retrying in the background", {
        url: this.#conn.safeUrl,
      });
    }
  }

  #now(): number {
    return this.#ctx.clock.now();
  }

  // ------------------------------------------------------------ enqueue

  async enqueue(tasks: readonly Task[]): Promise<void> {
    if (this.#closed) throw brokerClosedError(this.#name);
    if (tasks.length === 0) return;
    const { args, wake } = enqueueArgs(tasks, this.shards.length);
    // One script call per shard: each is all or nothing, and a batch sent
    // again lands on the same shards (by id), where it is recognised.
    await Promise.all(
      args.map((shardArgs, i) => shardArgs.length > 0 ? this.#enqueueShard(i, shardArgs) : null),
    );
    if (wake) this.#conn.wakeConsumers();
  }

  async #enqueueShard(shard: number, args: ScriptArg[]): Promise<void> {
    const keys = this.shards[shard]!;
    const replicas = this.#o.wait_replicas;
    const conn = replicas > 0 ? this.#conn.producer : this.#conn.redis;
    // The capacity is shared evenly by the shards.
    const capacity = Math.ceil((this.#o.capacity ?? 0) / this.shards.length);
    for (;;) {
      // WAIT counts the writes of one connection: on a cluster, the one to the
      // shard's master, which must not have changed while the script ran.
      const node = replicas > 0 ? this.#conn.nodeOf(conn, keys.queues[1]) : undefined;
      const reply = await this.#conn.script(
        "thEnqueue",
        keys.queues,
        [
          this.#now(),
          keys.taskPrefix,
          keys.taskSuffix,
          capacity,
          ...args,
        ],
        false,
        conn,
      ) as string[];
      const error = scriptError("thEnqueue", reply[0]!, reply[1], this.#name);
      if (error) throw error;
      if (reply[0] !== "full") {
        // "again" writes too (see ENQUEUE), so WAIT also covers a batch sent earlier.
        if (replicas > 0) {
          if (!node || this.#conn.nodeOf(conn, keys.queues[1]) !== node) {
            throw new Error(
              `Shard "${keys.prefix}" changed masters during the enqueue; the batch is not ` +
                "acknowledged yet",
            );
          }
          await this.#conn.waitForReplicas(node, replicas, this.#o.wait_timeout);
        }
        return;
      }
      // Backpressure: the gateway waits, the hub queue fills, its overflow policy applies.
      await new Promise((r) => setTimeout(r, FULL_RETRY_MS));
      if (this.#closed) throw brokerClosedError(this.#name);
    }
  }

  // ------------------------------------------------------------ reserve

  async reserve(consumer: string, max: number, signal: AbortSignal): Promise<Delivery[]> {
    checkReserveSize(max);
    if (!this.#closed) this.#leases.start();
    const n = this.shards.length;
    let state = this.#consumers.get(consumer);
    if (!state) this.#consumers.set(consumer, state = { slots: this.shards.map(() => 0), next: 0 });
    for (;;) {
      if (this.#closed || signal.aborted) return [];
      const holder = `${consumer}@${this.#conn.epoch}`;
      // Every shard in turn, starting one further each call, so all are served
      // alike, until `max` are taken (a busy first shard fills it in one call).
      const taken: Delivery[] = [];
      const start = state.next;
      state.next = (start + 1) % n;
      for (let k = 0; k < n && taken.length < max; k++) {
        const shard = (start + k) % n;
        const deliveries = await this.#take(shard, consumer, holder, max - taken.length, false);
        if (deliveries.length > 0) {
          taken.push(...await datedDeliveries(this.#conn, this.shards[shard]!, deliveries));
        }
      }
      // Taken from several shards: higher priorities first, each shard's order kept.
      if (taken.length > 0) return n === 1 ? taken : byPriority(taken);
      const shard = start;
      const moved = await this.#wait(shard, consumer, holder, signal);
      if (moved !== null) {
        return await datedDeliveries(this.#conn, this.shards[shard]!, [
          this.#landed(shard, consumer, holder, moved),
        ]);
      }
    }
  }

  /**
   * Delivers the task BLMOVE moved into the processing list at once (the
   * latency path of an idle consumer): the script that marks it assigned is
   * sent without waiting for its reply; later commands on the same
   * connection (started, settle) run after it.
   */
  #landed(shard: number, consumer: string, holder: string, element: Buffer): Delivery {
    this.#take(shard, consumer, holder, 1, true).catch((error) =>
      this.#log.debug("Cannot mark a task assigned", { error: errorMessage(error) })
    );
    return toDelivery(this, shard, element, holder, this.#now());
  }

  async #take(shard: number, consumer: string, holder: string, max: number, landed: boolean) {
    const state = this.#consumers.get(consumer)!;
    const now = this.#now();
    const { slot, elements } = await reserveScript(this.#conn, this.shards[shard]!, {
      consumer,
      holder,
      max,
      now,
      lease: this.#o.lease,
      slot: state.slots[shard]!,
      landed,
    });
    state.slots[shard] = slot;
    return elements.map((element) => toDelivery(this, shard, element, holder, now));
  }

  /** Blocks on a shard's normal-priority queue for one poll interval (see `blockingMove()`). */
  #wait(shard: number, consumer: string, holder: string, signal: AbortSignal) {
    const keys = this.shards[shard]!;
    return this.#conn.blockingMove(
      consumer,
      keys.queues[1]!,
      keys.processing(holder),
      this.#o.poll_interval,
      signal,
    );
  }

  // ------------------------------------------------------------ recovery

  /**
   * Returns the tasks of consumers whose lease expired to the front of their
   * queues (and, with `force`, those of the named consumer keys); see
   * `Leases.recover()`. Returns how many tasks were requeued.
   */
  recover(force: readonly string[] = []): Promise<number> {
    return this.#leases.recover(force);
  }

  // ------------------------------------------------------------ settle

  #receipt(delivery: Delivery): Receipt {
    return ownReceipt(
      delivery,
      (r): r is Receipt => r instanceof Receipt && r.owner === this,
      this.#name,
    );
  }

  started(deliveries: readonly Delivery[]): Promise<void> {
    let receipts: Receipt[];
    try {
      receipts = checkStarts(
        deliveries,
        (d) => this.#receipt(d),
        (r) => r.started ? "running" : "assigned",
      );
    } catch (error) {
      return Promise.reject(error);
    }
    const ids = this.shards.map((): string[] => []);
    receipts.forEach((r, i) => {
      r.started = true;
      const id = deliveries[i]!.task.id;
      if (id !== "") ids[r.shard]!.push(id);
    });
    ids.forEach((shardIds, shard) => {
      if (shardIds.length === 0) return;
      const keys = this.shards[shard]!;
      // The record is informational: handlers need not wait for it. Commands
      // on this connection run in order, so a later getTask() or settle sees it.
      this.#conn.script("thStarted", [keys.queues[1]], [
        this.#now(),
        keys.taskPrefix,
        keys.taskSuffix,
        ...shardIds,
      ])
        .catch((error) =>
          this.#log.debug("Cannot mark tasks running", { error: errorMessage(error) })
        );
    });
    return Promise.resolve();
  }

  async settle(settlements: readonly Settlement[]): Promise<void> {
    // Check the whole batch before changing anything: all or nothing.
    const receipts = checkSettlements(
      settlements,
      (d) => this.#receipt(d),
      (r) => r.started ? "running" : "assigned",
    );
    // One script call per shard and consumer key (a worker's batch is one).
    const groups = new Map<string, { shard: number; holder: string; indexes: number[] }>();
    receipts.forEach((r, i) => {
      const key = `${r.shard}\0${r.holder}`;
      let g = groups.get(key);
      if (!g) groups.set(key, g = { shard: r.shard, holder: r.holder, indexes: [] });
      g.indexes.push(i);
    });
    const now = this.#now();
    await Promise.all([...groups.values()].map(({ shard, holder, indexes }) => {
      const args: ScriptArg[] = [];
      for (const i of indexes) args.push(...settleArgs(settlements[i]!, receipts[i]!, now, i));
      return settleGroup(this.#conn, this.shards[shard]!, {
        holder,
        args,
        settlements: indexes.map((i) => settlements[i]!),
        now,
        options: this.#o,
        log: this.#log,
        broker: this.#name,
      });
    }));
    for (const r of receipts) r.settled = true;
  }

  // ------------------------------------------------------------ dead letters

  /**
   * One page of dead letters, oldest first. Reads the list in chunks from
   * the cursor on (found in Redis by bisection), so a page costs about its
   * own size, not the whole dead-letter queue's.
   */
  listDeadLetters(
    selector: DeadLetterSelector & { limit?: number; cursor?: string },
  ): Promise<DeadLetterPage> {
    return this.#dlq.list(selector);
  }

  replayDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.#dlq.change("replay", selector);
  }

  purgeDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.#dlq.change("purge", selector);
  }

  // ------------------------------------------------------------ status

  async getTask(id: string): Promise<TaskRecord | undefined> {
    // The shard its id hashes to first; a foreign producer may have pushed it to another.
    const first = shardOf(id, this.shards.length);
    const order = [first, ...[...this.shards.keys()].filter((i) => i !== first)];
    for (const shard of order) {
      const hash = await this.#conn.redis.hgetall(this.shards[shard]!.task(id)).catch((e) => {
        throw this.#conn.wrap(e);
      });
      const record = recordFromHash(id, hash);
      if (record) return record;
    }
    return undefined;
  }

  /** The totals over every shard. */
  async depth(): Promise<BrokerDepth> {
    const counts = await Promise.all(this.shards.map((keys) =>
      this.#conn.script("thDepth", [
        ...keys.queues,
        keys.delayed,
        keys.dlq,
        keys.consumers,
      ], [keys.prefix]) as Promise<number[]>
    ));
    const total = (i: number) => counts.reduce((sum, c) => sum + c[i]!, 0);
    return { queued: total(0), inflight: total(1), delayed: total(2), dead: total(3) };
  }

  async health(): Promise<void> {
    try {
      await this.#conn.redis.ping();
    } catch (error) {
      throw this.#conn.wrap(error);
    }
  }

  /**
   * Ends waiting reserves with `[]`, returns tasks still held by this
   * instance's consumers to the queue, and closes the connections.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopListening();
    this.#leases.stop();
    this.#conn.closeWaiting();
    if (this.#consumers.size > 0 && this.#conn.redis.status === "ready") {
      const held = [...this.#consumers.keys()].map((c) => `${c}@${this.#conn.epoch}`);
      const tasks = await this.recover(held);
      if (tasks > 0) this.#log.info("Returned unfinished tasks to the queue", { tasks });
    }
    await this.#conn.quit();
  }
}

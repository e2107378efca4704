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
import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import {
  type BrokerDepth,
  type BrokerInstance,
  type DeadLetter,
  type DeadLetterPage,
  type DeadLetterSelector,
  type Delivery,
  errorMessage,
  type Logger,
  ownReceipt,
  PermanentError,
  type PluginContext,
  redactText,
  type Settlement,
  type Task,
  type TaskEvent,
  type TaskRecord,
  transition,
} from "../../core/mod.ts";
import {
  compactPayload,
  decodeDeadLetter,
  decodeElement,
  encodeDeadLetter,
  encodeTask,
  matchesSelector,
  QUEUE_INDEX,
  recordFromHash,
  type RedisKeys,
  redisKeys,
  type StoredDeadLetter,
} from "./_codec.ts";
import { scriptError, type ScriptName, SCRIPTS } from "./_scripts.ts";
import type { RedisBrokerOptions } from "./_config.ts";

/** The broker's handle in a {@link Delivery}. */
class Receipt {
  settled = false;
  started = false;
  /** The element's exact bytes when they are not UTF-8 (`raw` then is not them). */
  bytes: Buffer | undefined;
  /** The task came without `created_at` (see `DecodedTask.undated`). */
  undated = false;
  constructor(
    readonly owner: RedisBroker,
    readonly raw: string,
    /** Consumer key name (consumer and connection epoch) whose processing list holds it. */
    readonly holder: string,
  ) {}
}

const OUTCOME_EVENT: Record<Settlement["outcome"], TaskEvent> = {
  completed: "complete",
  retry: "fail",
  dead_letter: "dead_letter",
  released: "release",
};

type ScriptArg = string | number | Buffer;
type ScriptFn = (numKeys: number, ...args: ScriptArg[]) => Promise<unknown>;

/** Most due retries moved back to their queues per reserve call. */
const PROMOTE_PER_RESERVE = 500;
/** ioredis's words for a connection that is gone (before its status says so). */
const CONNECTION_LOST = /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE/;
/** Pause before offering a batch again to full queues. */
const FULL_RETRY_MS = 5;
/** Keys each recovery pass scans for processing lists no consumer entry names. */
const SWEEP_COUNT = 1000;

/** A dead letter as the API shows it (the seq is the broker's cursor). */
function withoutSeq({ seq: _seq, ...letter }: StoredDeadLetter): DeadLetter {
  return letter;
}

/** The dependencies a {@link RedisBroker} takes from its plugin context. */
export type RedisBrokerContext = Pick<PluginContext, "name" | "clock" | "logger" | "signal">;

/**
 * A {@link BrokerInstance} on Redis lists, shared by any number of hub and
 * processor processes. Created by the `redis` plugin.
 */
export class RedisBroker implements BrokerInstance {
  readonly shared = true;
  // Once a task is in Redis it outlives this process; how it outlives Redis is its persistence.
  readonly durable = true;
  readonly keys: RedisKeys;

  readonly #o: RedisBrokerOptions;
  readonly #name: string;
  readonly #ctx: RedisBrokerContext;
  readonly #log: Logger;
  readonly #Redis: typeof Redis;
  readonly #redis: Redis;
  /** One blocking connection per waiting consumer (BLMOVE holds a connection). */
  readonly #blocking = new Map<string, Redis>();
  /** Server-side client ids of blocking connections now inside BLMOVE. */
  readonly #waiting = new Set<number>();
  /** Subscriber to the wake channel, opened with the first blocking connection. */
  #wake: Redis | undefined;
  /** Consumers this instance reserved for, with their round-robin slot. */
  readonly #consumers = new Map<string, { slot: number }>();
  /** Bumped on every reconnect: tasks moved under an older epoch are recovered by lease expiry. */
  #epoch = 0;
  #down = false;
  #closed = false;
  #closing = new AbortController();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #recovery: ReturnType<typeof setInterval> | undefined;
  #checkedPolicy = false;
  /** SCAN cursor of the sweep for processing lists no consumer entry names. */
  #sweep = "0";

  /**
   * `RedisClass` is ioredis's `Redis`, passed in so that the plugin loads
   * ioredis only when a broker is created.
   */
  constructor(options: RedisBrokerOptions, ctx: RedisBrokerContext, RedisClass: typeof Redis) {
    this.#Redis = RedisClass;
    this.#o = options;
    this.#ctx = ctx;
    this.#name = ctx.name;
    this.#log = ctx.logger;
    this.keys = redisKeys(options.prefix, options.task_key);
    this.#redis = this.#connect("commands");
    this.#redis.on("ready", () => {
      if (this.#down) this.#log.info("Connected to Redis again", { url: this.#safeUrl() });
      this.#down = false;
      this.#epoch++;
      void this.#checkEvictionPolicy();
    });
    ctx.signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Waits up to `ms` for the first connection; logs and carries on when Redis is down. */
  async ready(ms: number): Promise<void> {
    await this.#whenReady(this.#redis, ms);
    if ((this.#redis.status as string) !== "ready") {
      this.#log.error("Redis is unreachable; retrying in the background", {
        url: this.#safeUrl(),
      });
    }
  }

  #safeUrl(): string {
    return redactText(this.#o.url);
  }

  #connect(role: string): Redis {
    const redis = new this.#Redis(this.#o.url, {
      // Fail fast while disconnected: callers (gateway, workers) hold their
      // work and retry with backoff, which keeps backpressure honest.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectionName: `telemetryhub:${this.#name}:${role}`,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      lazyConnect: false,
    });
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
    redis.on("error", (error: Error) => {
      if (this.#closed || role !== "commands") return;
      if (!this.#down) {
        this.#down = true;
        this.#log.error("Cannot reach Redis; reconnecting with backoff", {
          url: this.#safeUrl(),
          error: errorMessage(error),
        });
      }
    });
    return redis;
  }

  async #checkEvictionPolicy(): Promise<void> {
    if (this.#checkedPolicy) return;
    this.#checkedPolicy = true;
    try {
      const reply = await this.#redis.config("GET", "maxmemory-policy") as string[];
      const policy = reply[1];
      if (policy !== undefined && policy !== "noeviction") {
        this.#log.warn(
          `Redis evicts keys under memory pressure (maxmemory-policy "${policy}"): tasks ` +
            `can be lost; set maxmemory-policy to "noeviction"`,
          { url: this.#safeUrl() },
        );
      }
    } catch (error) {
      this.#log.debug("Cannot read maxmemory-policy (CONFIG disabled?)", {
        error: errorMessage(error),
      });
    }
  }

  /** Runs a script; with `buffers`, its bulk replies come back as bytes. */
  async #script(
    name: ScriptName,
    keys: readonly string[],
    args: ScriptArg[],
    buffers = false,
  ): Promise<unknown> {
    const fn = (this.#redis as unknown as Record<string, ScriptFn>)[
      buffers ? `${name}Buffer` : name
    ]!;
    try {
      return await fn.call(this.#redis, keys.length, ...keys, ...args);
    } catch (error) {
      throw this.#wrap(error);
    }
  }

  /** Says "unreachable" in words when the connection is down, instead of ioredis's wording. */
  #wrap(error: unknown): Error {
    const status = this.#redis.status;
    if (status === "ready" && !CONNECTION_LOST.test(errorMessage(error))) {
      return error instanceof Error ? error : new Error(String(error));
    }
    return new Error(
      `Redis at "${this.#safeUrl()}" is unreachable (${status}): ${errorMessage(error)}`,
      { cause: error },
    );
  }

  #now(): number {
    return this.#ctx.clock.now();
  }

  #closedError(): Error {
    return new Error(`Broker "${this.#name}" is closed`);
  }

  // ------------------------------------------------------------ enqueue

  async enqueue(tasks: readonly Task[]): Promise<void> {
    if (this.#closed) throw this.#closedError();
    if (tasks.length === 0) return;
    const args: ScriptArg[] = [];
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
        body = encodeTask(task, compactPayload(task.payload));
      } catch (error) {
        // Content, not an outage: retrying would fail the same way forever.
        throw new PermanentError(`Cannot encode task "${task.id}": ${errorMessage(error)}`, {
          cause: error,
        });
      }
      args.push(
        task.id,
        index,
        body,
        task.type,
        task.attempts,
        task.created_at,
        task.pipeline ?? "",
      );
    }
    const { keys } = this;
    for (;;) {
      const reply = await this.#script("thEnqueue", keys.queues, [
        this.#now(),
        keys.taskPrefix,
        keys.taskSuffix,
        this.#o.capacity ?? 0,
        ...args,
      ]) as string[];
      const error = scriptError("thEnqueue", reply[0]!, reply[1], this.#name);
      if (error) throw error;
      if (reply[0] !== "full") {
        if (wake) this.#wakeConsumers();
        return;
      }
      // Backpressure: the gateway waits, the hub queue fills, its overflow policy applies.
      await new Promise((r) => setTimeout(r, FULL_RETRY_MS));
      if (this.#closed) throw this.#closedError();
    }
  }

  // ------------------------------------------------------------ reserve

  async reserve(consumer: string, max: number, signal: AbortSignal): Promise<Delivery[]> {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`Reserve size must be a positive integer, got "${max}"`);
    }
    this.#startTimers();
    for (;;) {
      if (this.#closed || signal.aborted) return [];
      const holder = `${consumer}@${this.#epoch}`;
      const deliveries = await this.#take(consumer, holder, max, false);
      if (deliveries.length > 0) return await this.#dated(deliveries);
      const moved = await this.#wait(consumer, holder, signal);
      if (moved !== null) return await this.#dated([this.#landed(consumer, holder, moved)]);
    }
  }

  /**
   * Gives tasks that came without `created_at` the time their record was
   * started (by the reserve script, on first delivery), so a redelivery has
   * the same `created_at`: the identity of their samples without `ts`
   * derives from it. Only foreign producers' tasks pay this round trip.
   */
  async #dated(deliveries: Delivery[]): Promise<Delivery[]> {
    const undated = deliveries.filter((d) => (d.receipt as Receipt).undated);
    if (undated.length === 0) return deliveries;
    const { keys } = this;
    const pipeline = this.#redis.pipeline();
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
   * Delivers the task BLMOVE moved into the processing list at once (the
   * latency path of an idle consumer): the script that marks it assigned is
   * sent without waiting for its reply; later commands on the same
   * connection (started, settle) run after it.
   */
  #landed(consumer: string, holder: string, element: Buffer): Delivery {
    this.#take(consumer, holder, 1, true).catch((error) =>
      this.#log.debug("Cannot mark a task assigned", { error: errorMessage(error) })
    );
    return this.#delivery(element, holder, this.#now());
  }

  /**
   * Elements are read as bytes, so one that is not UTF-8 is kept exactly:
   * settling it (removing it from the processing list, dead-lettering it)
   * needs those bytes, not their lossy decoding.
   */
  #delivery(element: Buffer, holder: string, now: number): Delivery {
    const decoded = decodeElement(element, now);
    const receipt = new Receipt(this, decoded.raw, holder);
    receipt.bytes = decoded.bytes;
    if ("undated" in decoded) receipt.undated = true;
    const delivery: Delivery = { task: decoded.task, receipt };
    if (decoded.invalid !== undefined) delivery.invalid = decoded.invalid;
    return delivery;
  }

  async #take(consumer: string, holder: string, max: number, landed: boolean) {
    const { keys } = this;
    const state = this.#consumers.get(consumer) ?? { slot: 0 };
    this.#consumers.set(consumer, state);
    const now = this.#now();
    const reply = await this.#script("thReserve", [
      ...keys.queues,
      keys.processing(holder),
      keys.delayed,
      keys.lease(holder),
      keys.consumers,
    ], [
      max,
      now,
      holder,
      this.#o.lease,
      keys.taskPrefix,
      keys.taskSuffix,
      state.slot,
      landed ? "1" : "0",
      consumer,
      PROMOTE_PER_RESERVE,
    ], true) as [number, ...Buffer[]];
    state.slot = Number(reply[0]);
    const out: Delivery[] = [];
    // A landed element was delivered already (it is the reply's first).
    if (landed) return out;
    for (let i = 1; i < reply.length; i++) {
      out.push(this.#delivery(reply[i] as Buffer, holder, now));
    }
    return out;
  }

  /**
   * Blocks on the normal-priority queue (where most tasks and every foreign
   * producer's land) for one poll interval; the next reserve script also
   * sees high and low priority and due retries. Returns the task BLMOVE
   * moved (as bytes), or `null`.
   */
  async #wait(consumer: string, holder: string, signal: AbortSignal): Promise<Buffer | null> {
    // Never block once stopping: a move that lands after close() returned its
    // consumer's tasks would sit in a processing list nobody holds.
    if (this.#closed || signal.aborted) return null;
    let conn = this.#blocking.get(consumer);
    if (!conn) this.#blocking.set(consumer, conn = this.#connect(`blocking:${consumer}`));
    if (conn.status !== "ready") {
      // Connecting (first use, or Redis is down): wait for it at most one poll interval.
      await this.#whenReady(conn, this.#o.poll_interval);
      if ((conn.status as string) !== "ready") {
        if (this.#redis.status === "ready" || this.#closed) return null;
        throw new Error(`Redis at "${this.#safeUrl()}" is unreachable (${conn.status})`);
      }
    }
    const seconds = this.#o.poll_interval / 1000;
    const id = await this.#clientId(conn);
    // Both waits above give close() or the caller time to stop.
    if (this.#closed || signal.aborted) return null;
    const closing = this.#closing.signal;
    // Removed in `finally`: an idle consumer polls every poll_interval, and a
    // listener left on a long-lived signal per poll is a leak.
    let on!: () => void;
    const abort = new Promise<"aborted">((resolve) => on = () => resolve("aborted"));
    signal.addEventListener("abort", on, { once: true });
    closing.addEventListener("abort", on, { once: true });
    try {
      const moved = conn.blmoveBuffer(
        this.keys.queues[1],
        this.keys.processing(holder),
        "LEFT",
        "RIGHT",
        seconds,
      );
      if (id !== undefined) this.#waiting.add(id);
      const outcome = await Promise.race([moved, abort]).finally(() => {
        if (id !== undefined) this.#waiting.delete(id);
      });
      if (outcome === "aborted") {
        // The move may still land a task for a consumer that stopped waiting:
        // put it straight back rather than leave it to lease recovery.
        moved.then((element) => {
          if (element !== null) return this.#unmove(holder, element);
        }).catch((error) =>
          this.#log.debug("Cannot put back a task", { error: errorMessage(error) })
        );
        return null;
      }
      return outcome;
    } catch (error) {
      if (conn.status === "ready") throw error;
      throw new Error(`Redis at "${this.#safeUrl()}" is unreachable: ${errorMessage(error)}`, {
        cause: error,
      });
    } finally {
      signal.removeEventListener("abort", on);
      closing.removeEventListener("abort", on);
    }
  }

  /**
   * The server's id of a blocking connection (asked once per connection
   * and reconnect), so a wake-up can `CLIENT UNBLOCK` it; `undefined` when
   * it cannot be had (the consumer then waits out its poll interval).
   */
  async #clientId(conn: Redis): Promise<number | undefined> {
    this.#listenForWake();
    const known = this.#clientIds.get(conn);
    if (known !== undefined) return known;
    try {
      const id = Number(await conn.client("ID"));
      this.#clientIds.set(conn, id);
      conn.once("close", () => this.#clientIds.delete(conn));
      return id;
    } catch {
      return undefined;
    }
  }

  readonly #clientIds = new WeakMap<Redis, number>();

  /**
   * Subscribes to the wake channel: when any process enqueues high or low
   * priority tasks, this process's idle consumers stop blocking on the
   * normal queue and run a reserve, instead of waiting out `poll_interval`.
   */
  #listenForWake(): void {
    if (this.#wake || this.#closed) return;
    const sub = this.#wake = this.#connect("wake");
    const channel = this.keys.wake;
    // Subscribe on every (re)connect: the offline queue is off, so nothing is queued before.
    sub.on("ready", () => {
      // Wake-ups published before the subscription lands are missed: look once more.
      sub.subscribe(channel).then(
        () => this.#unblockWaiting(),
        (error) =>
          this.#log.debug("Cannot subscribe to the wake channel", { error: errorMessage(error) }),
      );
    });
    sub.on("message", () => this.#unblockWaiting());
  }

  /** Unblocks this process's consumers now inside BLMOVE (they then look at every queue). */
  #unblockWaiting(): void {
    if (this.#redis.status !== "ready") return;
    for (const id of this.#waiting) {
      this.#redis.client("UNBLOCK", id).catch(() => {});
    }
  }

  /** Tells every process's idle consumers that high or low priority tasks arrived. */
  #wakeConsumers(): void {
    this.#redis.publish(this.keys.wake, "1").catch((error) =>
      // Idle consumers then find the tasks within poll_interval.
      this.#log.debug("Cannot publish a wake-up", { error: errorMessage(error) })
    );
  }

  async #unmove(holder: string, element: Buffer): Promise<void> {
    await this.#script("thUnmove", [this.keys.processing(holder), this.keys.queues[1]!], [
      element,
    ]);
  }

  /** Resolves once `conn` is ready or `ms` have passed. */
  #whenReady(conn: Redis, ms: number): Promise<void> {
    if (conn.status === "ready") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        conn.off("ready", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      conn.on("ready", done);
    });
  }

  // ------------------------------------------------------------ heartbeat and recovery

  #startTimers(): void {
    if (this.#heartbeat !== undefined || this.#closed) return;
    this.#heartbeat = setInterval(() => void this.#renewLeases(), Math.max(50, this.#o.lease / 3));
    this.#recovery = setInterval(() => void this.recover(), this.#o.recover_interval);
  }

  async #renewLeases(): Promise<void> {
    if (this.#redis.status !== "ready" || this.#consumers.size === 0) return;
    const pipeline = this.#redis.pipeline();
    for (const consumer of this.#consumers.keys()) {
      pipeline.set(this.keys.lease(`${consumer}@${this.#epoch}`), "1", "PX", this.#o.lease);
    }
    try {
      await pipeline.exec();
    } catch { /* down: the error handler logs it; leases lapse and recovery takes over */ }
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
    if (this.#redis.status !== "ready") return 0;
    const { keys } = this;
    try {
      const found = force.length === 0 ? await this.#sweepStep() : [];
      const [tasks, consumers] = await this.#script(
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
    const start = this.keys.processing("");
    const pattern = `${start.replace(/[*?[\]\\]/g, "\\$&")}*`;
    const [next, found] = await this.#redis.scan(
      this.#sweep,
      "MATCH",
      pattern,
      "COUNT",
      SWEEP_COUNT,
    );
    this.#sweep = next;
    return found.map((key) => key.slice(start.length));
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
      receipts = deliveries.map((d) => this.#receipt(d));
      for (const r of receipts) transition(r.started ? "running" : "assigned", "start");
    } catch (error) {
      return Promise.reject(error);
    }
    for (const r of receipts) r.started = true;
    const ids = deliveries.map((d) => d.task.id).filter((id) => id !== "");
    if (ids.length > 0) {
      // The record is informational: handlers need not wait for it. Commands
      // on this connection run in order, so a later getTask() or settle sees it.
      this.#script("thStarted", [], [
        this.#now(),
        this.keys.taskPrefix,
        this.keys.taskSuffix,
        ...ids,
      ])
        .catch((error) =>
          this.#log.debug("Cannot mark tasks running", { error: errorMessage(error) })
        );
    }
    return Promise.resolve();
  }

  async settle(settlements: readonly Settlement[]): Promise<void> {
    // Check the whole batch before changing anything: all or nothing.
    const receipts: Receipt[] = [];
    const batch = new Set<Receipt>();
    for (const s of settlements) {
      const receipt = this.#receipt(s.delivery);
      if (batch.has(receipt)) {
        throw new Error(`Delivery of task "${s.delivery.task.id}" is settled twice in one batch`);
      }
      batch.add(receipt);
      transition(receipt.started ? "running" : "assigned", OUTCOME_EVENT[s.outcome]);
      if (s.outcome === "retry" && !(Number.isFinite(s.delay) && s.delay >= 0)) {
        throw new RangeError(
          `Retry delay of task "${s.delivery.task.id}" must be a non-negative number of ` +
            `milliseconds, got "${s.delay}"`,
        );
      }
      receipts.push(receipt);
    }
    // One script call per consumer key (a worker's batch is one).
    const groups = new Map<string, number[]>();
    receipts.forEach((r, i) => {
      let g = groups.get(r.holder);
      if (!g) groups.set(r.holder, g = []);
      g.push(i);
    });
    const now = this.#now();
    await Promise.all([...groups].map(([holder, indexes]) => {
      const args: ScriptArg[] = [];
      for (const i of indexes) args.push(...this.#settleArgs(settlements[i]!, receipts[i]!, now));
      return this.#settleGroup(holder, args, indexes.map((i) => settlements[i]!), now);
    }));
    for (const r of receipts) r.settled = true;
  }

  #settleArgs(s: Settlement, receipt: Receipt, now: number): ScriptArg[] {
    const task = s.delivery.task;
    const ran = receipt.started && s.outcome !== "released";
    const attempts = task.attempts + (ran ? 1 : 0);
    const priority = QUEUE_INDEX[task.priority ?? "normal"] ?? 2;
    let body = "";
    let due = "";
    let error = "";
    if (s.outcome === "retry") {
      due = String(now + s.delay);
      error = JSON.stringify(s.error);
      body = encodeTask({ ...task, attempts });
    } else if (s.outcome === "dead_letter") {
      error = JSON.stringify(s.error);
      const letter: DeadLetter = {
        // Quarantine: only the failed samples stay, under the same id.
        task: { ...(s.task ?? task), attempts },
        error: s.error,
        attempts,
        dead_lettered_at: now,
      };
      if (receipt.bytes !== undefined) letter.raw_base64 = receipt.bytes.toString("base64");
      else if (s.delivery.invalid !== undefined) letter.raw = receipt.raw;
      try {
        body = encodeDeadLetter(letter);
      } catch {
        // A payload JSON.parse took but JSON.stringify cannot (nested too deep): keep the
        // element as it came, or settling would fail and the task come back forever.
        letter.task = { ...letter.task, payload: null };
        letter.raw = receipt.raw;
        body = encodeDeadLetter(letter);
      }
    }
    // The script finds a task by id; only an id-less one, or one whose text
    // is not its bytes, is sent back whole.
    const raw = receipt.bytes ?? (task.id === "" ? receipt.raw : "");
    return [s.outcome, raw, task.id, attempts, body, due, error, priority];
  }

  async #settleGroup(
    holder: string,
    args: ScriptArg[],
    settlements: readonly Settlement[],
    now: number,
  ): Promise<void> {
    const { keys } = this;
    const status = await this.#script("thSettle", [
      keys.processing(holder),
      ...keys.queues,
      keys.delayed,
      keys.dlq,
      keys.dlqSeq,
    ], [
      now,
      keys.taskPrefix,
      keys.taskSuffix,
      this.#o.retention,
      this.#o.max_dead_letters,
      ...args,
    ]) as unknown[];
    const dropped = Number(status.pop() ?? 0);
    if (dropped > 0) {
      this.#log.warn("Dead-letter queue full; dropped the oldest dead letters", {
        dropped,
        max_dead_letters: this.#o.max_dead_letters,
      });
    }
    (status as string[]).forEach((code, i) => {
      const error = scriptError("thSettle", code, settlements[i]?.delivery.task.id, this.#name);
      // Not an error for the caller: the task is queued again and will run again.
      if (error) this.#log.debug(error.message);
    });
  }

  // ------------------------------------------------------------ dead letters

  /**
   * The dead letters after seq `after`, oldest first, in chunks of `size`
   * read from the cursor's place on (found by bisection in Redis), so
   * memory and time follow what the caller reads, not the queue's length.
   */
  async *#scanDeadLetters(
    after: number,
    size: number,
  ): AsyncGenerator<{ raw: string; letter: StoredDeadLetter }[]> {
    for (;;) {
      const raws = await this.#script("thDeadLetterPage", [this.keys.dlq], [
        after,
        size,
      ]) as string[];
      const chunk: { raw: string; letter: StoredDeadLetter }[] = [];
      const from = after;
      for (const raw of raws) {
        const letter = decodeDeadLetter(raw);
        if (!letter) continue;
        after = Math.max(after, letter.seq);
        chunk.push({ raw, letter });
      }
      yield chunk;
      // A full chunk of elements the broker did not write would not move the cursor.
      if (raws.length < size || after === from) return;
    }
  }

  /**
   * One page of dead letters, oldest first. Reads the list in chunks from
   * the cursor on (found in Redis by bisection), so a page costs about its
   * own size, not the whole dead-letter queue's.
   */
  async listDeadLetters(
    selector: DeadLetterSelector & { limit?: number; cursor?: string },
  ): Promise<DeadLetterPage> {
    const limit = selector.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`Limit must be a positive integer, got "${limit}"`);
    }
    let after = -1;
    if (selector.cursor !== undefined) {
      after = Number(selector.cursor);
      if (!/^\d+$/.test(selector.cursor) || !Number.isSafeInteger(after)) {
        throw new RangeError(`Invalid dead-letter cursor "${selector.cursor}"`);
      }
    }
    const items: StoredDeadLetter[] = [];
    for await (
      const chunk of this.#scanDeadLetters(after, Math.min(Math.max(limit + 1, 100), 1000))
    ) {
      for (const { letter } of chunk) {
        if (!matchesSelector(letter, selector)) continue;
        if (items.length === limit) {
          // One more match exists: the next page starts after the last item taken.
          return { items: items.map(withoutSeq), cursor: String(items[limit - 1]!.seq) };
        }
        items.push(letter);
      }
    }
    return { items: items.map(withoutSeq) };
  }

  replayDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.#changeDeadLetters("replay", selector);
  }

  purgeDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.#changeDeadLetters("purge", selector);
  }

  /**
   * Replays or purges the matching dead letters, one script call per chunk
   * of the queue. Letters dead-lettered after the call began (a replayed
   * task failing again) are left for the next call.
   */
  async #changeDeadLetters(action: "replay" | "purge", selector: DeadLetterSelector) {
    const { keys } = this;
    const last = Number(
      await this.#redis.get(keys.dlqSeq).catch((e) => {
        throw this.#wrap(e);
      }) ?? 0,
    );
    let changed = 0;
    let wake = false;
    for await (const chunk of this.#scanDeadLetters(-1, 500)) {
      const args: ScriptArg[] = [];
      for (const { raw, letter } of chunk) {
        if (letter.seq > last || !matchesSelector(letter, selector)) continue;
        const task = letter.task;
        // An undecodable message is replayed as it came, so it fails the same way.
        const body = letter.raw_base64 !== undefined
          ? Buffer.from(letter.raw_base64, "base64")
          : letter.raw ?? encodeTask({ ...task, attempts: 0 });
        const queue = QUEUE_INDEX[task.priority ?? "normal"];
        if (queue !== 2) wake = true;
        args.push(raw, task.id, action === "replay" ? body : "", queue);
      }
      if (args.length > 0) {
        changed += Number(
          await this.#script("thDeadLetters", [keys.dlq, ...keys.queues], [
            this.#now(),
            keys.taskPrefix,
            keys.taskSuffix,
            action,
            ...args,
          ]),
        );
      }
      if (chunk.some(({ letter }) => letter.seq > last)) break;
    }
    if (action === "replay" && wake) this.#wakeConsumers();
    return changed;
  }

  // ------------------------------------------------------------ status

  async getTask(id: string): Promise<TaskRecord | undefined> {
    const hash = await this.#redis.hgetall(this.keys.task(id)).catch((e) => {
      throw this.#wrap(e);
    });
    return recordFromHash(id, hash);
  }

  async depth(): Promise<BrokerDepth> {
    const { keys } = this;
    const [queued, inflight, delayed, dead] = await this.#script("thDepth", [
      ...keys.queues,
      keys.delayed,
      keys.dlq,
      keys.consumers,
    ], [keys.prefix]) as number[];
    return { queued: queued!, inflight: inflight!, delayed: delayed!, dead: dead! };
  }

  async health(): Promise<void> {
    try {
      await this.#redis.ping();
    } catch (error) {
      throw this.#wrap(error);
    }
  }

  /**
   * Ends waiting reserves with `[]`, returns tasks still held by this
   * instance's consumers to the queue, and closes the connections.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    this.#ctx.signal.removeEventListener("abort", this.#onAbort);
    clearInterval(this.#heartbeat);
    clearInterval(this.#recovery);
    // Blocking connections first: a BLMOVE served before they close has put
    // its task in a processing list, which the recovery below then returns.
    for (const conn of this.#blocking.values()) conn.disconnect();
    this.#blocking.clear();
    this.#wake?.disconnect();
    if (this.#consumers.size > 0 && this.#redis.status === "ready") {
      const held = [...this.#consumers.keys()].map((c) => `${c}@${this.#epoch}`);
      const tasks = await this.recover(held);
      if (tasks > 0) this.#log.info("Returned unfinished tasks to the queue", { tasks });
    }
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }

  #onAbort = (): void => {
    void this.close();
  };
}

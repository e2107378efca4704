/**
 * The Redis broker's connections: one for commands and scripts, one
 * blocking connection per waiting consumer (`BLMOVE` holds a connection),
 * and a subscriber to the wake channel. Says "unreachable" in words when
 * Redis is down.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { Cluster, Redis } from "ioredis";
import { errorMessage, type Logger } from "../../core/mod.ts";
import { type ScriptName, SCRIPTS } from "./_scripts.ts";
import type { IoRedis, Topology } from "./_topology.ts";
import { slotOf } from "./_shards.ts";

/** An argument of a Lua script. */
export type ScriptArg = string | number | Buffer;
type ScriptFn = (numKeys: number, ...args: ScriptArg[]) => Promise<unknown>;

/** ioredis's words for a connection that is gone (before its status says so). */
const CONNECTION_LOST = /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE/;

/** Options of {@link RedisConnections}. */
export interface RedisConnectionsOptions {
  /** Where the connections go (one server, or the master the sentinels name). */
  topology: Topology;
  /** The broker's name, in connection names. */
  name: string;
  /** The channel on which enqueues of high or low priority tasks wake idle consumers. */
  wakeChannel: string;
  logger: Logger;
  /**
   * ioredis, passed in so that the plugin loads it only when a broker is
   * created.
   */
  io: IoRedis;
}

/** The connections of one broker instance. */
export class RedisConnections {
  /** The connection for commands and scripts. */
  readonly redis: Redis;
  /** Bumped on every reconnect: tasks moved under an older epoch are recovered by lease expiry. */
  epoch = 0;
  /** Server-side client ids of blocking connections now inside BLMOVE. */
  readonly waiting = new Set<number>();

  readonly #o: RedisConnectionsOptions;
  readonly #log: Logger;
  /** One blocking connection per waiting consumer. */
  readonly #blocking = new Map<string, Redis>();
  /** Subscriber to the wake channel, opened with the first blocking connection. */
  #wake: Redis | undefined;
  readonly #clientIds = new WeakMap<Redis, number>();
  #down = false;
  #closed = false;
  #closing = new AbortController();
  #checkedPolicy = false;

  constructor(options: RedisConnectionsOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.redis = this.#connect("commands");
    this.redis.on("ready", () => {
      if (this.#down) this.#log.info("Connected to Redis again", { url: this.safeUrl });
      this.#down = false;
      this.epoch++;
      void this.#checkEvictionPolicy();
    });
    // A cluster connection stays ready while one of its masters fails over:
    // a node's error starts a new epoch, as a reconnect does (see `epoch`).
    if (this.cluster) this.redis.on("node error", () => this.epoch++);
  }

  /** Whether the connections are to a Redis Cluster. */
  get cluster(): boolean {
    return this.#o.topology.cluster;
  }

  /**
   * The connection through which `conn` sends commands on `key`: itself on
   * a standalone Redis; on a cluster, its connection to the master that
   * serves the key's slot now (`undefined` while no master does).
   */
  nodeOf(conn: Redis, key: string): Redis | undefined {
    if (!this.cluster) return conn;
    const cluster = conn as unknown as Cluster;
    const owner = cluster.slots[slotOf(key)]?.[0];
    return cluster.nodes("master").find((n) => `${n.options.host}:${n.options.port}` === owner);
  }

  /**
   * The connections to every master: the one connection of a standalone
   * Redis, or each master of a cluster (for commands that are per node,
   * such as SCAN).
   */
  masters(): Redis[] {
    if (!this.cluster) return [this.redis];
    return (this.redis as unknown as Cluster).nodes("master");
  }

  /** The target without secrets, for messages. */
  get safeUrl(): string {
    return this.#o.topology.where;
  }

  #connect(role: string): Redis {
    const redis = this.#o.topology.open(this.#o.io, {
      // Fail fast while disconnected: callers (gateway, workers) hold their
      // work and retry with backoff, which keeps backpressure honest.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectionName: `telemetryhub:${this.#o.name}:${role}`,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      lazyConnect: false,
      // A master demoted by a failover refuses writes: find the new one.
      reconnectOnError: (error) => error.message.startsWith("READONLY") ? 2 : false,
    });
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
    redis.on("error", (error: Error) => {
      if (this.#closed || role !== "commands") return;
      if (!this.#down) {
        this.#down = true;
        this.#log.error("Cannot reach Redis; reconnecting with backoff", {
          url: this.safeUrl,
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
      const reply = await this.redis.config("GET", "maxmemory-policy") as string[];
      const policy = reply[1];
      if (policy !== undefined && policy !== "noeviction") {
        this.#log.warn(
          `Redis evicts keys under memory pressure (maxmemory-policy "${policy}"): tasks ` +
            `can be lost; set maxmemory-policy to "noeviction"`,
          { url: this.safeUrl },
        );
      }
    } catch (error) {
      this.#log.debug("Cannot read maxmemory-policy (CONFIG disabled?)", {
        error: errorMessage(error),
      });
    }
  }

  /**
   * The connection enqueues go through when they wait for replicas: `WAIT`
   * blocks its connection until the replicas confirm, so it gets its own
   * rather than holding up reserves and settlements behind it.
   */
  get producer(): Redis {
    if (!this.#producer) this.#producer = this.#connect("producer");
    return this.#producer;
  }
  #producer: Redis | undefined;

  /**
   * Waits until `replicas` replicas hold every write made so far on `conn`
   * (`WAIT`), at most `timeoutMs`; throws (so the caller sends the batch
   * again) when fewer confirm in time.
   */
  async waitForReplicas(conn: Redis, replicas: number, timeoutMs: number): Promise<void> {
    let confirmed: number;
    try {
      confirmed = await conn.wait(replicas, timeoutMs);
    } catch (error) {
      throw this.wrap(error, conn);
    }
    if (confirmed < replicas) {
      throw new Error(
        `Only ${confirmed} of ${replicas} replicas of Redis at "${this.safeUrl}" confirmed ` +
          `the batch within ${timeoutMs} ms (wait_replicas); it is not acknowledged yet`,
      );
    }
  }

  /** Runs a script (on `conn`, the command connection by default); with `buffers`, its bulk replies come back as bytes. */
  async script(
    name: ScriptName,
    keys: readonly string[],
    args: ScriptArg[],
    buffers = false,
    conn: Redis = this.redis,
  ): Promise<unknown> {
    const fn = (conn as unknown as Record<string, ScriptFn>)[
      buffers ? `${name}Buffer` : name
    ]!;
    try {
      return await fn.call(conn, keys.length, ...keys, ...args);
    } catch (error) {
      throw this.wrap(error, conn);
    }
  }

  /** Says "unreachable" in words when the connection is down, instead of ioredis's wording. */
  wrap(error: unknown, conn: Redis = this.redis): Error {
    const status = conn.status;
    if (status === "ready" && !CONNECTION_LOST.test(errorMessage(error))) {
      return error instanceof Error ? error : new Error(String(error));
    }
    return new Error(
      `Redis at "${this.safeUrl}" is unreachable (${status}): ${errorMessage(error)}`,
      { cause: error },
    );
  }

  /** The blocking connection of `consumer`, opened on first use. */
  blocking(consumer: string): Redis {
    let conn = this.#blocking.get(consumer);
    if (!conn) this.#blocking.set(consumer, conn = this.#connect(`blocking:${consumer}`));
    return conn;
  }

  /**
   * The server's id of a blocking connection (asked once per connection
   * and reconnect), so a wake-up can `CLIENT UNBLOCK` it; `undefined` when
   * it cannot be had (the consumer then waits out its poll interval).
   */
  async clientId(conn: Redis): Promise<number | undefined> {
    // A cluster's blocking connection is one per node: no single id to unblock.
    if (this.cluster) return undefined;
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

  /**
   * Subscribes to the wake channel: when any process enqueues high or low
   * priority tasks, this process's idle consumers stop blocking on the
   * normal queue and run a reserve, instead of waiting out `poll_interval`.
   */
  #listenForWake(): void {
    if (this.#wake || this.#closed) return;
    const sub = this.#wake = this.#connect("wake");
    const channel = this.#o.wakeChannel;
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
    if (this.redis.status !== "ready") return;
    for (const id of this.waiting) {
      this.redis.client("UNBLOCK", id).catch(() => {});
    }
  }

  /** Tells every process's idle consumers that high or low priority tasks arrived. */
  wakeConsumers(): void {
    // Cluster consumers are not woken: they look at every shard each poll_interval.
    if (this.cluster) return;
    this.redis.publish(this.#o.wakeChannel, "1").catch((error) =>
      // Idle consumers then find the tasks within poll_interval.
      this.#log.debug("Cannot publish a wake-up", { error: errorMessage(error) })
    );
  }

  /**
   * Blocks on the list `from` (the normal-priority queue, where most tasks
   * and every foreign producer's land) for one poll interval, moving its
   * first element to `to` (the consumer's processing list); the next reserve
   * script also sees high and low priority and due retries. Returns the
   * element BLMOVE moved (as bytes), or `null`.
   */
  async blockingMove(
    consumer: string,
    from: string,
    to: string,
    pollMs: number,
    signal: AbortSignal,
  ): Promise<Buffer | null> {
    // Never block once stopping: a move that lands after close() returned its
    // consumer's tasks would sit in a processing list nobody holds.
    if (this.#closed || signal.aborted) return null;
    const conn = this.blocking(consumer);
    if (conn.status !== "ready") {
      // Connecting (first use, or Redis is down): wait for it at most one poll interval.
      await this.whenReady(conn, pollMs);
      if ((conn.status as string) !== "ready") {
        if (this.redis.status === "ready" || this.#closed) return null;
        throw new Error(`Redis at "${this.safeUrl}" is unreachable (${conn.status})`);
      }
    }
    const seconds = pollMs / 1000;
    const id = await this.clientId(conn);
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
        from,
        to,
        "LEFT",
        "RIGHT",
        seconds,
      );
      if (id !== undefined) this.waiting.add(id);
      const outcome = await Promise.race([moved, abort]).finally(() => {
        if (id !== undefined) this.waiting.delete(id);
      });
      if (outcome === "aborted") {
        // The move may still land a task for a consumer that stopped waiting:
        // put it straight back rather than leave it to lease recovery.
        moved.then((element) => {
          if (element !== null) return this.#unmove(from, to, element);
        }).catch((error) =>
          this.#log.debug("Cannot put back a task", { error: errorMessage(error) })
        );
        return null;
      }
      return outcome;
    } catch (error) {
      if (conn.status === "ready") throw error;
      throw new Error(`Redis at "${this.safeUrl}" is unreachable: ${errorMessage(error)}`, {
        cause: error,
      });
    } finally {
      signal.removeEventListener("abort", on);
      closing.removeEventListener("abort", on);
    }
  }

  async #unmove(from: string, to: string, element: Buffer): Promise<void> {
    await this.script("thUnmove", [to, from], [element]);
  }

  /** Resolves once `conn` is ready or `ms` have passed. */
  whenReady(conn: Redis, ms: number): Promise<void> {
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

  /**
   * Closes the blocking connections and the subscriber, and stops reporting
   * errors. Blocking connections first: a BLMOVE served before they close
   * has put its task in a processing list, which recovery then returns.
   */
  closeWaiting(): void {
    this.#closed = true;
    this.#closing.abort();
    for (const conn of this.#blocking.values()) conn.disconnect();
    this.#blocking.clear();
    this.#wake?.disconnect();
  }

  /** Closes the command connection (and the producer's). */
  async quit(): Promise<void> {
    this.#producer?.disconnect();
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

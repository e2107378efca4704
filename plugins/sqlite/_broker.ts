/**
 * The SQLite broker's engine. Every change goes through one write queue:
 * what callers ask for in the same turn of the event loop (enqueues,
 * reserves, settlements, heartbeats) runs in one `BEGIN IMMEDIATE … COMMIT`
 * (group commit), each call in its own savepoint so that one refused call
 * does not undo the others. Each call's promise resolves only after that
 * commit. Processes sharing the file serialize on SQLite's write lock;
 * an idle consumer notices another process's commits through
 * `PRAGMA data_version`.
 *
 * @module
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import {
  type BrokerDepth,
  type BrokerInstance,
  type Clock,
  type DeadLetterPage,
  type DeadLetterSelector,
  type Delivery,
  errorMessage,
  type Logger,
  ownReceipt,
  type PluginContext,
  type Priority,
  type Settlement,
  type Task,
  type TaskEvent,
  type TaskRecord,
  transition,
} from "../../core/mod.ts";
import type { SqliteBrokerOptions } from "./_config.ts";
import {
  deadLetterFromRow,
  decodeBody,
  decodeCursor,
  encodeCursor,
  encodePayload,
  PRIORITY_NUMBER,
  recordFromRow,
  type Row,
  taskFromRow,
} from "./_codec.ts";
import { openBrokerDatabase, OwnerLocks } from "./_db.ts";
import { filterArgs, prepare } from "./_statements.ts";

/**
 * Weighted round-robin over the priority queues, the same as the memory
 * and Redis brokers: out of every 7 tasks taken while all three queues hold
 * tasks, 4 are `high`, 2 `normal` and 1 `low`.
 */
export const PRIORITY_SCHEDULE: readonly Priority[] = [
  "high",
  "normal",
  "high",
  "low",
  "high",
  "normal",
  "high",
];

/**
 * Most tasks whose payload objects are kept after enqueue, so that a task
 * reserved by the process that enqueued it (one process, `role: all`) is
 * not decoded again. About 100 KB each for 1,000 samples.
 */
const CACHED_TASKS = 512;
/** How often the worker checkpoints the log into the database file. */
const CHECKPOINT_MS = 100;
/** Most due retries moved back to their queues per transaction. */
const PROMOTE_PER_FLUSH = 500;
/** After the first dropped dead letter, log one line per this many drops. */
const DROP_LOG_EVERY = 1000;
/** SQLite result codes that mean the file cannot be written now (not the caller's data). */
const STORAGE_ERRORS = new Set([5, 6, 8, 10, 11, 13, 14, 26]);

const OUTCOME_EVENT: Record<Settlement["outcome"], TaskEvent> = {
  completed: "complete",
  retry: "fail",
  dead_letter: "dead_letter",
  released: "release",
};

/** The broker's handle in a {@link Delivery}. */
class Receipt {
  settled = false;
  /** In a write not yet committed: a second settle is refused. */
  pending = false;
  started = false;
  constructor(
    readonly owner: SqliteBroker,
    readonly seq: number,
    /** Which reservation: a settle after the lease was lost (and the task requeued) is ignored. */
    readonly token: number,
  ) {}
}

/** A call waiting for the next transaction. */
interface Op {
  /** Enqueues: the commit must be durable, and they wait for room in FIFO order. */
  enqueue: boolean;
  run(): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  finished?: boolean;
}

/** What an enqueue's `run` returns when the queue has no room yet. */
const WAIT = Symbol("wait");

/** The dependencies a {@link SqliteBroker} takes from its plugin context. */
export type SqliteBrokerContext = Pick<
  PluginContext,
  "name" | "clock" | "logger" | "signal" | "dataDir"
>;

function resolvePath(path: string, baseDir: string): string {
  if (path.startsWith("/") || path === ":memory:") return path;
  return `${baseDir.replace(/\/$/, "")}/${path.replace(/^\.\//, "")}`;
}

function errcode(error: unknown): number | undefined {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  return typeof code === "number" ? code & 0xff : undefined;
}

/**
 * A durable {@link BrokerInstance} in one SQLite file, shared by the
 * processes of one machine. Created by the `sqlite` plugin.
 */
export class SqliteBroker implements BrokerInstance {
  readonly shared = true;
  // enqueue() resolves once its tasks are committed (and, with synchronous: full, fsynced).
  readonly durable = true;
  /** The database file. */
  readonly file: string;

  readonly #o: SqliteBrokerOptions;
  readonly #name: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #signal: AbortSignal;
  readonly #db: DatabaseSync;
  readonly #s: ReturnType<typeof prepare>;
  /** This incarnation of this process: owner of its leases. */
  readonly #owner = crypto.randomUUID();
  readonly #locks: OwnerLocks;

  #pending: Op[] = [];
  #waiting: Op[] = [];
  #flushQueued = false;
  /** The write-ahead log, fsynced off the event loop before enqueues resolve (`full`). */
  #wal: Deno.FsFile | undefined;
  /** The fsync running now, and whether commits wait for another one after it. */
  #syncing: Promise<void> | undefined;
  #syncAgain: PromiseWithResolvers<void> | undefined;
  readonly #checkpointer: Worker;
  readonly #checkpointerStopped = Promise.withResolvers<void>();
  /** Counters from `meta`, read at the start of each transaction. */
  #back = 0;
  #deadSeq = 0;
  #token = 0;
  #metaDirty = false;
  /** The last `PRAGMA data_version` seen inside a transaction. */
  #dataVersion = -1;
  /** Earliest due time of a delayed task, as of the last transaction. */
  #nextDue: number | undefined;
  /** Set by a transaction that made tasks available. */
  #woke = false;
  /** A reserve took tasks: waiting enqueues may fit now. */
  #took = false;
  #slot = 0;
  #deadDropped = 0;
  /** Payloads of tasks enqueued here, by seq (see {@link CACHED_TASKS}). */
  readonly #cache = new Map<number, Task>();
  /** Cache entries of the transaction running now, kept once it commits. */
  #fresh: Array<[number, Task]> = [];
  /** Bumped whenever tasks may have become available (here or in another process). */
  #generation = 0;

  readonly #consumers = new Set<() => void>();
  #timer: { due: number; abort: AbortController } | undefined;
  #poll: ReturnType<typeof setInterval> | undefined;
  #maintenance: ReturnType<typeof setInterval> | undefined;
  /** Why the last write failed, until a write succeeds (health() reports it). */
  #failure: Error | undefined;
  #closed = false;

  /**
   * `testing.maxPageCount` caps the file's size in pages: a full disk, for
   * tests.
   */
  constructor(
    options: SqliteBrokerOptions,
    ctx: SqliteBrokerContext,
    testing: { maxPageCount?: number } = {},
  ) {
    this.#o = options;
    this.#name = ctx.name;
    this.#clock = ctx.clock;
    this.#log = ctx.logger;
    this.#signal = ctx.signal;
    this.file = resolvePath(options.path, ctx.dataDir);
    this.#db = openBrokerDatabase(this.file, options.busy_timeout);
    this.#locks = new OwnerLocks(this.file);
    try {
      this.#locks.hold(this.#owner);
    } catch (error) {
      this.#db.close();
      throw new Error(`Cannot open broker database "${this.file}": ${errorMessage(error)}`, {
        cause: error,
      });
    }
    // Commits never fsync on this thread: enqueues wait for #syncWal() (full),
    // and checkpoints run in a worker; the high threshold is only a fallback.
    // A 32 MB page cache (SQLite's default is 2 MB) holds a gateway batch of
    // 64 tasks without spilling mid-transaction.
    this.#db.exec(
      "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 32768; PRAGMA cache_size = -32768",
    );
    if (testing.maxPageCount !== undefined) {
      this.#db.exec(`PRAGMA max_page_count = ${Math.trunc(testing.maxPageCount)}`);
    }
    this.#s = prepare(this.#db);
    // Recover at once what dead processes (this one's previous run, say) held.
    this.#maintain(true);
    this.#flush();
    if (this.#failure) {
      const error = this.#failure;
      this.#db.close();
      this.#locks.release();
      throw error;
    }
    this.#locks.sweep(new Set(this.#s.owners.all().map((r) => String(r.owner))));
    const every = Math.max(50, Math.min(options.recover_interval, options.lease / 3));
    this.#maintenance = setInterval(() => this.#maintain(false), every);
    this.#checkpointer = new Worker(new URL("./_checkpointer.ts", import.meta.url).href, {
      type: "module",
    });
    this.#checkpointer.onmessage = (event: MessageEvent) => {
      if (event.data === "stopped") return this.#checkpointerStopped.resolve();
      this.#checkpointerStopped.resolve();
      if (this.#closed) return;
      // Commits then checkpoint on this thread (the fallback threshold): slower, still correct.
      this.#log.warn("Cannot checkpoint the broker database in a worker", {
        file: this.file,
        error: String(event.data?.error),
      });
    };
    // An error in the worker must never reach this process's top level.
    this.#checkpointer.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#checkpointerStopped.resolve();
      if (this.#closed) return;
      this.#log.warn("Broker checkpoint worker failed", { file: this.file, error: event.message });
    };
    this.#checkpointer.postMessage({ file: this.file, interval: CHECKPOINT_MS });
    this.#signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  // ------------------------------------------------------------ write queue

  #submit<T>(enqueue: boolean, run: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ enqueue, run, resolve: resolve as (v: unknown) => void, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // A microtask: every call made in this turn of the event loop (and in
    // the promise callbacks it runs) shares one transaction, without the
    // milliseconds a timer would add to every hop. The fsync that makes
    // enqueues durable is shared more widely (see #syncWal()).
    queueMicrotask(() => this.#flush());
  }

  /** Runs every waiting call in one transaction. */
  #flush(): void {
    this.#flushQueued = false;
    const ops = this.#waiting.length > 0 ? [...this.#waiting, ...this.#pending] : this.#pending;
    this.#pending = [];
    this.#waiting = [];
    if (ops.length === 0) return;
    const db = this.#db;
    const done: Array<[Op, unknown]> = [];
    const waiting: Op[] = [];
    this.#woke = false;
    this.#took = false;
    this.#fresh = [];
    try {
      this.#s.begin.run();
      this.#dataVersion = Number(this.#s.dataVersion.get()?.data_version ?? -1);
      this.#loadMeta();
      let blocked = false;
      for (const op of ops) {
        if (op.enqueue && blocked) {
          waiting.push(op);
          continue;
        }
        this.#s.savepoint.run();
        let value: unknown;
        try {
          value = op.run();
        } catch (error) {
          // A full disk or an I/O error ends the whole transaction.
          if (!db.isTransaction || STORAGE_ERRORS.has(errcode(error) ?? 0)) throw error;
          this.#s.rollbackTo.run();
          this.#s.releaseOp.run();
          op.finished = true;
          op.reject(error);
          continue;
        }
        this.#s.releaseOp.run();
        if (value === WAIT) {
          blocked = true;
          waiting.push(op);
        } else done.push([op, value]);
      }
      this.#saveMeta();
      this.#s.commit.run();
    } catch (error) {
      if (db.isTransaction) {
        try {
          db.exec("ROLLBACK");
        } catch { /* nothing left to undo */ }
      }
      const failure = this.#writeError(error);
      for (const op of ops) if (!op.finished) op.reject(failure);
      return;
    }
    for (const [seq, task] of this.#fresh) {
      if (this.#cache.size >= CACHED_TASKS) {
        this.#cache.delete(this.#cache.keys().next().value!); // the oldest
      }
      this.#cache.set(seq, task);
    }
    this.#fresh = [];
    if (this.#failure) {
      this.#log.info("Broker database is writable again", { file: this.file });
      this.#failure = undefined;
    }
    if (this.#o.synchronous === "full" && done.some(([op]) => op.enqueue)) {
      const synced = this.#syncWal();
      for (const [op, value] of done) {
        if (!op.enqueue) op.resolve(value);
        else {
          synced.then(
            () => op.resolve(value),
            (error) => op.reject(this.#writeError(error)),
          );
        }
      }
    } else for (const [op, value] of done) op.resolve(value);
    this.#waiting = waiting;
    if (this.#woke) this.#wakeConsumers();
    if (waiting.length > 0 && this.#took) this.#schedule();
    this.#updatePoll();
  }

  /**
   * Resolves after an fsync of the write-ahead log that started after the
   * last commit. The fsync runs on Deno's blocking-I/O threads; commits made
   * while one runs share the next. (Frames a checkpoint already copied were
   * synced into the database file by that checkpoint.)
   */
  #syncWal(): Promise<void> {
    if (this.#syncing) {
      this.#syncAgain ??= Promise.withResolvers<void>();
      return this.#syncAgain.promise;
    }
    const run = async (): Promise<void> => {
      this.#wal ??= await Deno.open(`${this.file}-wal`, { read: true, write: true });
      await this.#wal.syncData();
    };
    const syncing = run().finally(() => {
      this.#syncing = undefined;
      const again = this.#syncAgain;
      this.#syncAgain = undefined;
      if (again) this.#syncWal().then(again.resolve, again.reject);
    });
    this.#syncing = syncing;
    return syncing;
  }

  #writeError(error: unknown): Error {
    const code = errcode(error);
    const wrapped = new Error(
      `Cannot write broker database "${this.file}": ${errorMessage(error)}`,
      { cause: error },
    );
    if (code === undefined || STORAGE_ERRORS.has(code)) {
      if (this.#failure === undefined) {
        this.#log.error("Cannot write the broker database; enqueues fail until it can", {
          file: this.file,
          error: errorMessage(error),
        });
      }
      this.#failure = wrapped;
    }
    return wrapped;
  }

  #loadMeta(): void {
    for (const row of this.#s.meta.all()) {
      const value = Number(row.value);
      if (row.key === "back") this.#back = value;
      else if (row.key === "dead_seq") this.#deadSeq = value;
      else if (row.key === "token") this.#token = value;
    }
    this.#metaDirty = false;
  }

  #saveMeta(): void {
    if (!this.#metaDirty) return;
    this.#s.setMeta.run(this.#back, "back");
    this.#s.setMeta.run(this.#deadSeq, "dead_seq");
    this.#s.setMeta.run(this.#token, "token");
  }

  #nextOrd(): number {
    this.#metaDirty = true;
    return ++this.#back;
  }

  // ------------------------------------------------------------ enqueue

  enqueue(tasks: readonly Task[]): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (tasks.length === 0) return Promise.resolve();
    let bodies: string[];
    try {
      for (const task of tasks) {
        const priority = task.priority ?? "normal";
        if (!Object.hasOwn(PRIORITY_NUMBER, priority)) {
          throw new Error(`Task "${task.id}" has an unknown priority "${String(priority)}"`);
        }
      }
      // Encoded here, in the caller's turn, so the transaction only writes.
      bodies = tasks.map(encodePayload);
    } catch (error) {
      return Promise.reject(error);
    }
    // WAIT never resolves a call: the flush keeps the call until there is room.
    return this.#submit(true, () => this.#insert(tasks, bodies)) as Promise<unknown> as Promise<
      void
    >;
  }

  #insert(tasks: readonly Task[], bodies: readonly string[]): void | typeof WAIT {
    const queued = Number(this.#s.count.get("queued")?.n ?? 0);
    if (queued > 0 && queued + tasks.length > this.#o.capacity) return WAIT;
    const now = this.#clock.now();
    const s = this.#s;
    const fresh: Array<[number, Task]> = [];
    for (let i = 0; i < tasks.length; i++) {
      const task = tasks[i]!;
      const args: SQLInputValue[] = [
        task.id,
        task.type,
        PRIORITY_NUMBER[task.priority ?? "normal"],
        this.#nextOrd(),
        task.attempts,
        task.created_at,
        now,
        task.pipeline ?? null,
        task.checked === true ? 1 : 0,
      ];
      let seq: number;
      try {
        seq = Number(s.insertTask.run(...args).lastInsertRowid);
      } catch (error) {
        if (errcode(error) !== 19) throw error; // not a constraint: the id is taken
        const held = s.stateOf.get(task.id);
        if (held?.state !== "completed") {
          throw new Error(`Task "${task.id}" is already in broker "${this.#name}"`);
        }
        // A completed id may start a new life.
        s.deleteTask.run(held.seq as number);
        seq = Number(s.insertTask.run(...args).lastInsertRowid);
      }
      s.insertBody.run(seq, bodies[i]!);
      fresh.push([seq, task]);
    }
    this.#fresh.push(...fresh); // only once every insert of the call succeeded
    this.#woke = true;
  }

  // ------------------------------------------------------------ reserve

  async reserve(consumer: string, max: number, signal: AbortSignal): Promise<Delivery[]> {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`Reserve size must be a positive integer, got "${max}"`);
    }
    for (;;) {
      if (this.#closed || signal.aborted) return [];
      const generation = this.#generation;
      // A read needs no write lock: an idle consumer woken for nothing costs no transaction.
      if (!this.#mayHaveWork()) {
        await this.#waitForWork(signal);
        continue;
      }
      const taken = await this.#submit(false, () => this.#take(consumer, max));
      if (taken.length > 0) return taken;
      if (this.#closed || signal.aborted) return [];
      // Tasks committed after this reserve looked (in the same transaction, say): look again.
      if (this.#generation !== generation) continue;
      await this.#waitForWork(signal);
    }
  }

  /** Whether a task is queued or a delayed one due (as far as the last commit shows). */
  #mayHaveWork(): boolean {
    try {
      if (Number(this.#s.count.get("queued")?.n ?? 0) > 0) return true;
      const due = this.#s.earliestDue.get()?.due;
      this.#nextDue = typeof due === "number" ? due : undefined;
      return this.#nextDue !== undefined && this.#nextDue <= this.#clock.now();
    } catch {
      return true; // let the transaction report it
    }
  }

  #take(consumer: string, max: number): Delivery[] {
    if (this.#closed) return [];
    const now = this.#clock.now();
    this.#promoteDue(now);
    const s = this.#s;
    const queues = (["high", "normal", "low"] as const).map((p) =>
      s.queued.all(PRIORITY_NUMBER[p], max).map((r) => Number(r.seq))
    );
    const [high, normal, low] = queues as [number[], number[], number[]];
    const byPriority: Record<Priority, number[]> = { high, normal, low };
    const at: Record<Priority, number> = { high: 0, normal: 0, low: 0 };
    const chosen: number[] = [];
    outer: while (chosen.length < max) {
      for (let i = 0; i < PRIORITY_SCHEDULE.length; i++) {
        const priority = PRIORITY_SCHEDULE[this.#slot]!;
        this.#slot = (this.#slot + 1) % PRIORITY_SCHEDULE.length;
        const list = byPriority[priority];
        if (at[priority] < list.length) {
          chosen.push(list[at[priority]++]!);
          continue outer;
        }
      }
      break;
    }
    // Every queue seen whole and emptied: the next burst starts with `high`.
    if (
      queues.every((q, i) =>
        q.length < max && at[(["high", "normal", "low"] as const)[i]!] === q.length
      )
    ) {
      this.#slot = 0;
    }
    if (chosen.length === 0) {
      const due = s.earliestDue.get()?.due;
      this.#nextDue = typeof due === "number" ? due : undefined;
      return [];
    }
    this.#metaDirty = true;
    const token = ++this.#token;
    const list = JSON.stringify(chosen);
    s.assign.run(consumer, this.#owner, token, now, list);
    const rows = new Map<number, Row>();
    for (const row of s.rowsOf.all(list)) rows.set(Number(row.seq), row);
    const uncached: number[] = [];
    for (const seq of chosen) {
      const cached = this.#cache.get(seq);
      const row = rows.get(seq)!;
      // The seq of a task completed elsewhere can come back for another task.
      if (!cached || cached.id !== row.id || cached.created_at !== row.created_at) {
        uncached.push(seq);
      }
    }
    const bodies = new Map<number, unknown>();
    if (uncached.length > 0) {
      for (const row of s.payloadsOf.all(JSON.stringify(uncached))) {
        bodies.set(Number(row.seq), row.payload);
      }
    }
    const out: Delivery[] = [];
    for (const seq of chosen) {
      const row = rows.get(seq)!;
      const receipt = new Receipt(this, seq, token);
      if (!bodies.has(seq)) {
        out.push({ task: taskFromRow(row, this.#cache.get(seq)!.payload), receipt });
        continue;
      }
      const body = decodeBody(bodies.get(seq));
      const delivery: Delivery = { task: taskFromRow(row, body.payload), receipt };
      if (body.invalid !== undefined) delivery.invalid = body.invalid;
      out.push(delivery);
    }
    this.#took = true;
    return out;
  }

  /** Moves delayed tasks that are due to the back of their queues. */
  #promoteDue(now: number): void {
    if (this.#nextDue !== undefined && this.#nextDue > now) return;
    const due = this.#s.dueNow.all(now, PROMOTE_PER_FLUSH);
    for (const row of due) this.#s.promote.run(this.#nextOrd(), now, row.seq as number);
    if (due.length > 0) this.#woke = true;
    this.#nextDue = undefined;
  }

  #waitForWork(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#consumers.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      this.#consumers.add(wake);
      signal.addEventListener("abort", wake, { once: true });
      this.#armTimer();
      this.#updatePoll();
    });
  }

  #wakeConsumers(): void {
    this.#generation++;
    for (const wake of [...this.#consumers]) wake();
  }

  /** One timer for the earliest delayed task while a reserve waits. */
  #armTimer(): void {
    const due = this.#nextDue;
    if (due === undefined || this.#consumers.size === 0 || this.#closed) return;
    if (this.#timer && this.#timer.due <= due) return;
    this.#timer?.abort.abort();
    const timer = { due, abort: new AbortController() };
    this.#timer = timer;
    this.#clock.sleep(Math.max(0, due - this.#clock.now()), timer.abort.signal).then(
      () => {
        if (this.#timer !== timer) return;
        this.#timer = undefined;
        this.#nextDue = undefined;
        this.#wakeConsumers();
      },
      () => {}, // cancelled by an earlier due time or by close()
    );
  }

  /**
   * Polls `PRAGMA data_version` while someone waits (a consumer for tasks,
   * an enqueue for room): it changes when another process commits.
   */
  #updatePoll(): void {
    const needed = !this.#closed && (this.#consumers.size > 0 || this.#waiting.length > 0);
    if (needed && this.#poll === undefined) {
      this.#poll = setInterval(() => this.#checkVersion(), this.#o.poll_interval);
    } else if (!needed && this.#poll !== undefined) {
      clearInterval(this.#poll);
      this.#poll = undefined;
    }
  }

  #checkVersion(): void {
    let version: number;
    try {
      version = Number(this.#s.dataVersion.get()?.data_version ?? -1);
    } catch {
      return; // busy or closing: the next tick looks again
    }
    if (version === this.#dataVersion) return;
    this.#dataVersion = version;
    this.#nextDue = undefined; // another process may have scheduled a retry
    this.#wakeConsumers();
    if (this.#waiting.length > 0) this.#schedule();
  }

  // ------------------------------------------------------------ settle

  #receipt(delivery: Delivery): Receipt {
    const receipt = ownReceipt(
      delivery,
      (r): r is Receipt => r instanceof Receipt && r.owner === this,
      this.#name,
    );
    if (receipt.pending) {
      throw new Error(`Delivery of task "${delivery.task.id}" is already settled`);
    }
    return receipt;
  }

  started(deliveries: readonly Delivery[]): Promise<void> {
    let receipts: Receipt[];
    try {
      receipts = deliveries.map((d) => this.#receipt(d));
      for (const r of receipts) transition(r.started ? "running" : "assigned", "start");
    } catch (error) {
      return Promise.reject(error);
    }
    // Marked at once: the attempt counts even if the write below is lost.
    for (const r of receipts) r.started = true;
    return this.#submit(false, () => {
      const now = this.#clock.now();
      for (const r of receipts) this.#s.start.run(now, r.seq, r.token);
    });
  }

  settle(settlements: readonly Settlement[]): Promise<void> {
    // Check the whole batch before changing anything: all or nothing.
    const receipts: Receipt[] = [];
    try {
      const batch = new Set<Receipt>();
      for (const s of settlements) {
        const receipt = this.#receipt(s.delivery);
        if (batch.has(receipt)) {
          throw new Error(
            `Delivery of task "${s.delivery.task.id}" is settled twice in one batch`,
          );
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
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.reject(this.#closedError());
    for (const r of receipts) r.pending = true;
    return this.#submit(false, () => this.#settle(settlements, receipts)).then(
      (lost) => {
        for (const r of receipts) r.settled = true;
        if (lost.length > 0) {
          this.#log.warn(
            "Settled tasks that had been requeued after their lease expired; they run again",
            { broker: this.#name, task_ids: lost.slice(0, 10), count: lost.length },
          );
        }
      },
      (error) => {
        for (const r of receipts) r.pending = false;
        throw error;
      },
    );
  }

  /** Writes settlements; returns the ids of tasks whose lease was lost meanwhile. */
  #settle(settlements: readonly Settlement[], receipts: readonly Receipt[]): string[] {
    const now = this.#clock.now();
    const s = this.#s;
    const lost: string[] = [];
    let dead = 0;
    for (let i = 0; i < settlements.length; i++) {
      const settlement = settlements[i]!;
      const r = receipts[i]!;
      const task = settlement.delivery.task;
      const ran = r.started && settlement.outcome !== "released";
      const attempts = task.attempts + (ran ? 1 : 0);
      if (settlement.outcome === "completed" || settlement.outcome === "dead_letter") {
        this.#cache.delete(r.seq);
      }
      let changed: number | bigint;
      switch (settlement.outcome) {
        case "completed":
          changed = this.#o.retention > 0 && this.#o.max_retained > 0
            ? s.complete.run(attempts, now, now, r.seq, r.token).changes
            : s.forget.run(r.seq, r.token).changes;
          if (changed) s.deleteBody.run(r.seq);
          break;
        case "retry":
          changed = s.retry.run(
            attempts,
            now,
            now + settlement.delay,
            JSON.stringify(settlement.error),
            r.seq,
            r.token,
          ).changes;
          if (changed && (this.#nextDue === undefined || now + settlement.delay < this.#nextDue)) {
            this.#nextDue = now + settlement.delay;
          }
          break;
        case "dead_letter":
          this.#metaDirty = true;
          changed = s.dead.run(
            attempts,
            now,
            now,
            ++this.#deadSeq,
            JSON.stringify(settlement.error),
            r.seq,
            r.token,
          ).changes;
          if (changed && settlement.task) {
            // Quarantine: only the failed samples stay, under the same id.
            const kept = settlement.task;
            s.replaceTask.run(
              kept.type,
              kept.pipeline ?? null,
              kept.checked === true ? 1 : 0,
              PRIORITY_NUMBER[kept.priority ?? "normal"] ?? 1,
              r.seq,
            );
            s.replaceBody.run(encodePayload(kept), r.seq);
          }
          if (changed) dead++;
          break;
        case "released":
          changed = s.release.run(now, r.seq, r.token).changes;
          if (changed) this.#woke = true;
          break;
      }
      if (!changed) lost.push(task.id);
    }
    if (this.#nextDue !== undefined) this.#woke = true; // a zero delay is due at once
    if (dead > 0) this.#capDeadLetters();
    return lost;
  }

  #capDeadLetters(): void {
    const count = Number(this.#s.count.get("dead_letter")?.n ?? 0);
    const excess = count - this.#o.max_dead_letters;
    if (excess <= 0) return;
    for (const row of this.#s.oldestDead.all(excess)) {
      this.#s.deleteBody.run(row.seq as number);
      this.#s.deleteTask.run(row.seq as number);
      this.#deadDropped++;
      if (this.#deadDropped === 1 || this.#deadDropped % DROP_LOG_EVERY === 0) {
        this.#log.warn("Dead-letter queue is full: dropped the oldest dead letter", {
          broker: this.#name,
          task_id: row.id,
          task_type: row.type,
          max_dead_letters: this.#o.max_dead_letters,
          dropped_total: this.#deadDropped,
        });
      }
    }
  }

  // ------------------------------------------------------------ dead letters

  listDeadLetters(
    selector: DeadLetterSelector & { limit?: number; cursor?: string },
  ): Promise<DeadLetterPage> {
    try {
      const { limit = 100, cursor } = selector;
      if (!Number.isInteger(limit) || limit < 1) {
        throw new RangeError(`Dead-letter page limit must be a positive integer, got "${limit}"`);
      }
      const after = cursor === undefined ? 0 : decodeCursor(cursor);
      if (after === undefined) throw new RangeError(`Invalid dead-letter cursor "${cursor}"`);
      this.#open();
      const rows = this.#s.listDead.all(...filterArgs(selector), after, limit + 1);
      const items = rows.slice(0, limit).map(deadLetterFromRow);
      const page: DeadLetterPage = { items };
      if (rows.length > limit) page.cursor = encodeCursor(Number(rows[limit - 1]!.dead_seq));
      return Promise.resolve(page);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  replayDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.#submit(false, () => {
      const now = this.#clock.now();
      const rows = this.#s.selectDead.all(...filterArgs(selector));
      for (const row of rows) this.#s.replay.run(this.#nextOrd(), now, row.seq as number);
      if (rows.length > 0) this.#woke = true;
      return rows.length;
    });
  }

  purgeDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.#submit(false, () => {
      const rows = this.#s.selectDead.all(...filterArgs(selector));
      for (const row of rows) {
        this.#s.deleteBody.run(row.seq as number);
        this.#s.deleteTask.run(row.seq as number);
      }
      return rows.length;
    });
  }

  // ------------------------------------------------------------ leases and recovery

  /**
   * Renews this process's lease, requeues the tasks of processes that are
   * gone (lease expired, or a dead pid on this machine) and forgets old
   * completed records. `now`: run in the next transaction at once.
   */
  #maintain(now: boolean): void {
    if (this.#closed) return;
    this.#pending.push({
      enqueue: false,
      run: () => this.#recover(),
      resolve: (count) => {
        if ((count as number) > 0) {
          this.#log.warn("Requeued tasks of consumers whose process is gone or lease expired", {
            broker: this.#name,
            file: this.file,
            tasks: count,
          });
        }
      },
      reject: () => {}, // logged by #writeError; the next round tries again
    });
    if (!now) this.#schedule();
  }

  #recover(): number {
    const now = this.#clock.now();
    const s = this.#s;
    s.heartbeat.run(this.#owner, Deno.pid, now + this.#o.lease);
    for (const row of s.otherOwners.all(this.#owner)) {
      const owner = String(row.owner);
      if (Number(row.lease_until) < now || this.#locks.isGone(owner)) s.deleteOwner.run(owner);
    }
    const recovered = Number(s.recover.run(now).changes);
    if (recovered > 0) this.#woke = true;
    s.pruneOld.run(now - this.#o.retention);
    const excess = Number(s.count.get("completed")?.n ?? 0) - this.#o.max_retained;
    if (excess > 0) s.pruneOldest.run(excess);
    return recovered;
  }

  // ------------------------------------------------------------ status

  getTask(id: string): Promise<TaskRecord | undefined> {
    try {
      this.#open();
      const row = this.#s.task.get(id);
      if (!row) return Promise.resolve(undefined);
      const record = recordFromRow(row);
      if (
        record.state === "completed" &&
        (record.completed_at ?? 0) + this.#o.retention <= this.#clock.now()
      ) {
        return Promise.resolve(undefined);
      }
      return Promise.resolve(record);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  depth(): Promise<BrokerDepth> {
    try {
      this.#open();
      const n: Record<string, number> = {};
      for (const row of this.#s.counts.all()) n[String(row.state)] = Number(row.n);
      return Promise.resolve({
        queued: n.queued ?? 0,
        inflight: (n.assigned ?? 0) + (n.running ?? 0),
        delayed: n.failed ?? 0,
        dead: n.dead_letter ?? 0,
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Throws when the file cannot be written (disk full, I/O error) or read. */
  health(): Promise<void> {
    try {
      this.#open();
      if (this.#failure) throw this.#failure;
      this.#s.dataVersion.get();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #open(): void {
    if (this.#closed) throw this.#closedError();
  }

  /**
   * Ends waiting reserves (they resolve `[]`), commits what is pending,
   * returns the tasks this process still holds to the queue and closes the
   * file. Safe to call twice.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#signal.removeEventListener("abort", this.#onAbort);
    clearInterval(this.#maintenance);
    this.#pending.push({
      enqueue: false,
      run: () => {
        const now = this.#clock.now();
        const released = Number(this.#s.releaseOwner.run(now, this.#owner).changes);
        this.#s.deleteOwner.run(this.#owner);
        return released;
      },
      resolve: () => {},
      reject: () => {},
    });
    this.#closed = true;
    this.#flush();
    for (const op of this.#waiting) op.reject(this.#closedError());
    this.#waiting = [];
    this.#timer?.abort.abort();
    this.#timer = undefined;
    this.#updatePoll();
    this.#wakeConsumers();
    this.#checkpointer.postMessage("stop");
    try {
      this.#db.close();
    } catch { /* already closed */ }
    // Enqueues already committed still resolve once their fsync is done.
    const syncing = (this.#syncAgain?.promise ?? this.#syncing ?? Promise.resolve()).catch(
      () => {},
    );
    const stopped = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000); // a checkpoint stuck on a lock
      this.#checkpointerStopped.promise.then(() => (clearTimeout(timer), resolve()));
    });
    this.#locks.release();
    return Promise.all([syncing, stopped]).then(() => {
      this.#checkpointer.terminate();
      this.#wal?.close();
    });
  }

  #onAbort = (): void => {
    void this.close();
  };

  #closedError(): Error {
    return new Error(`Broker "${this.#name}" is closed`);
  }
}

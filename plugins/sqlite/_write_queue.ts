/**
 * The SQLite broker's write queue (group commit): what callers ask for in
 * the same turn of the event loop runs in one `BEGIN IMMEDIATE … COMMIT`,
 * each call in its own savepoint so that one refused call does not undo
 * the others, and each call's promise resolves only after that commit (and,
 * for enqueues with `synchronous: full`, after an fsync of the log).
 *
 * @module
 */
import { brokerClosedError, errorMessage } from "../../core/mod.ts";
import type { BrokerState } from "./_state.ts";

/** SQLite result codes that mean the file cannot be written now (not the caller's data). */
const STORAGE_ERRORS = new Set([5, 6, 8, 10, 11, 13, 14, 26]);

/** What an enqueue's `run` returns when the queue has no room yet. */
export const WAIT = Symbol("wait");

/** The SQLite result code of `error`, if it has one. */
export function errcode(error: unknown): number | undefined {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  return typeof code === "number" ? code & 0xff : undefined;
}

/** A call waiting for the next transaction. */
export interface Op {
  /** Enqueues: the commit must be durable, and they wait for room in FIFO order. */
  enqueue: boolean;
  run(): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  finished?: boolean;
}

/** What a commit tells the waiting consumers. */
export interface CommitListener {
  /** Tasks may have become available. */
  wake(): void;
  /** Whether someone waits may have changed. */
  updatePoll(): void;
}

/** Runs the calls of one turn of the event loop in one transaction. */
export class WriteQueue {
  readonly #st: BrokerState;
  readonly #listener: CommitListener;
  #pending: Op[] = [];
  #waiting: Op[] = [];
  #flushQueued = false;
  /** The write-ahead log, fsynced off the event loop before enqueues resolve (`full`). */
  #wal: Deno.FsFile | undefined;
  /** The fsync running now, and whether commits wait for another one after it. */
  #syncing: Promise<void> | undefined;
  #syncAgain: PromiseWithResolvers<void> | undefined;

  constructor(st: BrokerState, listener: CommitListener) {
    this.#st = st;
    this.#listener = listener;
  }

  /** Whether enqueues wait for room. */
  get hasWaiting(): boolean {
    return this.#waiting.length > 0;
  }

  /** Runs `run` in the next transaction; resolves with its value once committed. */
  submit<T>(enqueue: boolean, run: () => T): Promise<T> {
    if (this.#st.closed) return Promise.reject(brokerClosedError(this.#st.name));
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ enqueue, run, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  /** Adds `op` to the next transaction without scheduling it. */
  push(op: Op): void {
    this.#pending.push(op);
  }

  schedule(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // A microtask: every call made in this turn of the event loop (and in
    // the promise callbacks it runs) shares one transaction, without the
    // milliseconds a timer would add to every hop. The fsync that makes
    // enqueues durable is shared more widely (see #syncWal()).
    queueMicrotask(() => this.flush());
  }

  /** Runs every waiting call in one transaction. */
  flush(): void {
    this.#flushQueued = false;
    const ops = this.#waiting.length > 0 ? [...this.#waiting, ...this.#pending] : this.#pending;
    this.#pending = [];
    this.#waiting = [];
    if (ops.length === 0) return;
    const st = this.#st;
    const db = st.db;
    const done: Array<[Op, unknown]> = [];
    const waiting: Op[] = [];
    st.woke = false;
    st.took = false;
    st.fresh = [];
    try {
      st.s.begin.run();
      st.dataVersion = Number(st.s.dataVersion.get()?.data_version ?? -1);
      st.loadMeta();
      let blocked = false;
      for (const op of ops) {
        if (op.enqueue && blocked) {
          waiting.push(op);
          continue;
        }
        st.s.savepoint.run();
        let value: unknown;
        try {
          value = op.run();
        } catch (error) {
          // A full disk or an I/O error ends the whole transaction.
          if (!db.isTransaction || STORAGE_ERRORS.has(errcode(error) ?? 0)) throw error;
          st.s.rollbackTo.run();
          st.s.releaseOp.run();
          op.finished = true;
          op.reject(error);
          continue;
        }
        st.s.releaseOp.run();
        if (value === WAIT) {
          blocked = true;
          waiting.push(op);
        } else done.push([op, value]);
      }
      st.saveMeta();
      st.s.commit.run();
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
    st.keepFresh();
    if (st.failure) {
      st.log.info("Broker database is writable again", { file: st.file });
      st.failure = undefined;
    }
    if (st.o.synchronous === "full" && done.some(([op]) => op.enqueue)) {
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
    if (st.woke) this.#listener.wake();
    if (waiting.length > 0 && st.took) this.schedule();
    this.#listener.updatePoll();
  }

  /** Rejects the enqueues waiting for room (on close), each with its own `error()`. */
  rejectWaiting(error: () => Error): void {
    for (const op of this.#waiting) op.reject(error());
    this.#waiting = [];
  }

  /** Resolves once the fsyncs of committed enqueues are done (failed or not). */
  synced(): Promise<void> {
    return (this.#syncAgain?.promise ?? this.#syncing ?? Promise.resolve()).catch(() => {});
  }

  /** Closes the log file opened for fsyncs. */
  closeWal(): void {
    this.#wal?.close();
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
      this.#wal ??= await Deno.open(`${this.#st.file}-wal`, { read: true, write: true });
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
    const st = this.#st;
    const code = errcode(error);
    const wrapped = new Error(
      `Cannot write broker database "${st.file}": ${errorMessage(error)}`,
      { cause: error },
    );
    if (code === undefined || STORAGE_ERRORS.has(code)) {
      if (st.failure === undefined) {
        st.log.error("Cannot write the broker database; enqueues fail until it can", {
          file: st.file,
          error: errorMessage(error),
        });
      }
      st.failure = wrapped;
    }
    return wrapped;
  }
}

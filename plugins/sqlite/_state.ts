/**
 * What the parts of the SQLite broker share: the open file and its
 * statements, the counters kept in `meta`, and what the running transaction
 * found (tasks made available, payloads to cache).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import type { Clock, Logger, Task } from "../../core/mod.ts";
import type { SqliteBrokerOptions } from "./_config.ts";
import type { OwnerLocks } from "./_db.ts";
import type { prepare } from "./_statements.ts";

/**
 * Most tasks whose payload objects are kept after enqueue, so that a task
 * reserved by the process that enqueued it (one process, `role: all`) is
 * not decoded again. About 100 KB each for 1,000 samples.
 */
const CACHED_TASKS = 512;

/** Every prepared statement of the broker's connection. */
export type Statements = ReturnType<typeof prepare>;

/** The state of one {@link SqliteBroker}, shared by its parts. */
export class BrokerState {
  /** Counters from `meta`, read at the start of each transaction. */
  back = 0;
  deadSeq = 0;
  token = 0;
  metaDirty = false;
  /** The last `PRAGMA data_version` seen inside a transaction. */
  dataVersion = -1;
  /** Earliest due time of a delayed task, as of the last transaction. */
  nextDue: number | undefined;
  /** Set by a transaction that made tasks available. */
  woke = false;
  /** A reserve took tasks: waiting enqueues may fit now. */
  took = false;
  /** The next slot of the priority schedule. */
  slot = 0;
  deadDropped = 0;
  /** Payloads of tasks enqueued here, by seq (see {@link CACHED_TASKS}). */
  readonly cache = new Map<number, Task>();
  /** Cache entries of the transaction running now, kept once it commits. */
  fresh: Array<[number, Task]> = [];
  /** Bumped whenever tasks may have become available (here or in another process). */
  generation = 0;
  /** Why the last write failed, until a write succeeds (health() reports it). */
  failure: Error | undefined;
  closed = false;

  constructor(
    readonly o: SqliteBrokerOptions,
    readonly name: string,
    /** The database file. */
    readonly file: string,
    readonly clock: Clock,
    readonly log: Logger,
    readonly db: DatabaseSync,
    readonly s: Statements,
    readonly locks: OwnerLocks,
    /** This incarnation of this process: owner of its leases. */
    readonly owner: string,
  ) {}

  loadMeta(): void {
    for (const row of this.s.meta.all()) {
      const value = Number(row.value);
      if (row.key === "back") this.back = value;
      else if (row.key === "dead_seq") this.deadSeq = value;
      else if (row.key === "token") this.token = value;
    }
    this.metaDirty = false;
  }

  saveMeta(): void {
    if (!this.metaDirty) return;
    this.s.setMeta.run(this.back, "back");
    this.s.setMeta.run(this.deadSeq, "dead_seq");
    this.s.setMeta.run(this.token, "token");
  }

  /** The next position at the back of the queues. */
  nextOrd(): number {
    this.metaDirty = true;
    return ++this.back;
  }

  /** Keeps the payloads of the transaction that just committed, oldest out first. */
  keepFresh(): void {
    for (const [seq, task] of this.fresh) {
      if (this.cache.size >= CACHED_TASKS) {
        this.cache.delete(this.cache.keys().next().value!); // the oldest
      }
      this.cache.set(seq, task);
    }
    this.fresh = [];
  }
}

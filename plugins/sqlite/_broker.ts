/**
 * The SQLite broker's engine. Every change goes through one write queue
 * (`_write_queue.ts`): what callers ask for in the same turn of the event
 * loop (enqueues, reserves, settlements, heartbeats) runs in one
 * `BEGIN IMMEDIATE … COMMIT` (group commit). Processes sharing the file
 * serialize on SQLite's write lock; an idle consumer notices another
 * process's commits through `PRAGMA data_version` (`_wakeups.ts`).
 *
 * @module
 */
import {
  ALL_CAPABILITIES,
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
  ownReceipt,
  type PluginContext,
  type Settlement,
  type Task,
  type TaskRecord,
} from "../../core/mod.ts";
import { recordFromRow } from "./_codec.ts";
import type { SqliteBrokerOptions } from "./_config.ts";
import { listDeadLetters, purgeDeadLetters, replayDeadLetters } from "./_dead_letters.ts";
import { encodeTasks, insertTasks } from "./_enqueue.ts";
import { Checkpointer, openFile, resolvePath } from "./_open.ts";
import { maintenanceOp, releaseOp } from "./_recovery.ts";
import { mayHaveWork, take } from "./_reserve.ts";
import { Receipt, receiptState, writeSettlements, writeStarts } from "./_settle.ts";
import { BrokerState } from "./_state.ts";
import { prepare } from "./_statements.ts";
import { Wakeups } from "./_wakeups.ts";
import { WriteQueue } from "./_write_queue.ts";

/** The dependencies a {@link SqliteBroker} takes from its plugin context. */
export type SqliteBrokerContext = Pick<
  PluginContext,
  "name" | "clock" | "logger" | "signal" | "dataDir"
>;

/**
 * A durable {@link BrokerInstance} in one SQLite file, shared by the
 * processes of one machine. Created by the `sqlite` plugin.
 */
export class SqliteBroker implements BrokerInstance {
  readonly shared = true;
  readonly capabilities = ALL_CAPABILITIES;
  // enqueue() resolves once its tasks are committed (and, with synchronous: full, fsynced).
  readonly durable = true;
  /** The database file. */
  readonly file: string;

  readonly #st: BrokerState;
  readonly #queue: WriteQueue;
  readonly #wakeups: Wakeups;
  readonly #checkpointer: Checkpointer;
  readonly #maintenance: ReturnType<typeof setInterval>;
  readonly #stopListening: () => void;

  /**
   * `testing.maxPageCount` caps the file's size in pages: a full disk, for
   * tests.
   */
  constructor(
    options: SqliteBrokerOptions,
    ctx: SqliteBrokerContext,
    testing: { maxPageCount?: number } = {},
  ) {
    this.file = resolvePath(options.path, ctx.dataDir);
    const owner = crypto.randomUUID();
    const { db, locks } = openFile(this.file, options, owner, testing.maxPageCount);
    const st = new BrokerState(
      options,
      ctx.name,
      this.file,
      ctx.clock,
      ctx.logger,
      db,
      prepare(db),
      locks,
      owner,
    );
    this.#st = st;
    this.#wakeups = new Wakeups(st, () => this.#queue.hasWaiting, () => this.#queue.schedule());
    this.#queue = new WriteQueue(st, this.#wakeups);
    // Recover at once what dead processes (this one's previous run, say) held.
    this.#queue.push(maintenanceOp(st));
    this.#queue.flush();
    if (st.failure) {
      const error = st.failure;
      db.close();
      locks.release();
      throw error;
    }
    locks.sweep(new Set(st.s.owners.all().map((r) => String(r.owner))));
    const every = Math.max(50, Math.min(options.recover_interval, options.lease / 3));
    this.#maintenance = setInterval(() => this.#maintain(), every);
    this.#checkpointer = new Checkpointer(this.file, ctx.logger, () => st.closed);
    this.#stopListening = closeOnAbort(ctx.signal, this);
  }

  // ------------------------------------------------------------ enqueue and reserve

  enqueue(tasks: readonly Task[]): Promise<void> {
    if (this.#st.closed) return Promise.reject(brokerClosedError(this.#st.name));
    if (tasks.length === 0) return Promise.resolve();
    let bodies: string[];
    try {
      // Encoded here, in the caller's turn, so the transaction only writes.
      bodies = encodeTasks(tasks);
    } catch (error) {
      return Promise.reject(error);
    }
    // WAIT never resolves a call: the flush keeps the call until there is room.
    return this.#queue.submit(true, () => insertTasks(this.#st, tasks, bodies)) as Promise<
      unknown
    > as Promise<void>;
  }

  async reserve(consumer: string, max: number, signal: AbortSignal): Promise<Delivery[]> {
    checkReserveSize(max);
    const st = this.#st;
    for (;;) {
      if (st.closed || signal.aborted) return [];
      const generation = st.generation;
      // A read needs no write lock: an idle consumer woken for nothing costs no transaction.
      if (!mayHaveWork(st)) {
        await this.#wakeups.waitForWork(signal);
        continue;
      }
      const taken = await this.#queue.submit(false, () => take(st, this, consumer, max));
      if (taken.length > 0) return taken;
      if (st.closed || signal.aborted) return [];
      // Tasks committed after this reserve looked (in the same transaction, say): look again.
      if (st.generation !== generation) continue;
      await this.#wakeups.waitForWork(signal);
    }
  }

  // ------------------------------------------------------------ settle

  #receipt(delivery: Delivery): Receipt {
    const receipt = ownReceipt(
      delivery,
      (r): r is Receipt => r instanceof Receipt && r.owner === this,
      this.#st.name,
    );
    if (receipt.pending) {
      throw new Error(`Delivery of task "${delivery.task.id}" is already settled`);
    }
    return receipt;
  }

  started(deliveries: readonly Delivery[]): Promise<void> {
    let receipts: Receipt[];
    try {
      receipts = checkStarts(deliveries, (d) => this.#receipt(d), receiptState);
    } catch (error) {
      return Promise.reject(error);
    }
    // Marked at once: the attempt counts even if the write below is lost.
    for (const r of receipts) r.started = true;
    return this.#queue.submit(false, () => writeStarts(this.#st, receipts));
  }

  settle(settlements: readonly Settlement[]): Promise<void> {
    let receipts: Receipt[];
    try {
      receipts = checkSettlements(settlements, (d) => this.#receipt(d), receiptState);
    } catch (error) {
      return Promise.reject(error);
    }
    const st = this.#st;
    if (st.closed) return Promise.reject(brokerClosedError(st.name));
    for (const r of receipts) r.pending = true;
    return this.#queue.submit(false, () => writeSettlements(st, settlements, receipts)).then(
      (lost) => {
        for (const r of receipts) r.settled = true;
        if (lost.length > 0) {
          st.log.warn(
            "Settled tasks that had been requeued after their lease expired; they run again",
            { broker: st.name, task_ids: lost.slice(0, 10), count: lost.length },
          );
        }
      },
      (error) => {
        for (const r of receipts) r.pending = false;
        throw error;
      },
    );
  }

  // ------------------------------------------------------------ dead letters

  listDeadLetters(
    selector: DeadLetterSelector & { limit?: number; cursor?: string },
  ): Promise<DeadLetterPage> {
    try {
      return Promise.resolve(listDeadLetters(this.#st, selector));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  replayDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.#queue.submit(false, () => replayDeadLetters(this.#st, selector));
  }

  purgeDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.#queue.submit(false, () => purgeDeadLetters(this.#st, selector));
  }

  // ------------------------------------------------------------ status

  getTask(id: string): Promise<TaskRecord | undefined> {
    try {
      this.#open();
      const row = this.#st.s.task.get(id);
      if (!row) return Promise.resolve(undefined);
      const record = recordFromRow(row);
      if (
        record.state === "completed" &&
        (record.completed_at ?? 0) + this.#st.o.retention <= this.#st.clock.now()
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
      for (const row of this.#st.s.counts.all()) n[String(row.state)] = Number(row.n);
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
      if (this.#st.failure) throw this.#st.failure;
      this.#st.s.dataVersion.get();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #open(): void {
    if (this.#st.closed) throw brokerClosedError(this.#st.name);
  }

  // ------------------------------------------------------------ leases and close

  /**
   * Renews this process's lease, requeues the tasks of processes that are
   * gone and forgets old completed records, in the next transaction.
   */
  #maintain(): void {
    if (this.#st.closed) return;
    this.#queue.push(maintenanceOp(this.#st));
    this.#queue.schedule();
  }

  /**
   * Ends waiting reserves (they resolve `[]`), commits what is pending,
   * returns the tasks this process still holds to the queue and closes the
   * file. Safe to call twice.
   */
  close(): Promise<void> {
    const st = this.#st;
    if (st.closed) return Promise.resolve();
    this.#stopListening();
    clearInterval(this.#maintenance);
    this.#queue.push(releaseOp(st));
    st.closed = true;
    this.#queue.flush();
    this.#queue.rejectWaiting(() => brokerClosedError(st.name));
    this.#wakeups.cancelTimer();
    this.#wakeups.updatePoll();
    this.#wakeups.wake();
    this.#checkpointer.stop();
    try {
      st.db.close();
    } catch { /* already closed */ }
    // Enqueues already committed still resolve once their fsync is done.
    const syncing = this.#queue.synced();
    const stopped = this.#checkpointer.stopped();
    st.locks.release();
    return Promise.all([syncing, stopped]).then(() => {
      this.#checkpointer.terminate();
      this.#queue.closeWal();
    });
  }
}

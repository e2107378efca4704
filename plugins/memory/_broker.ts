/**
 * The memory broker's engine. Per-task work is O(1) (ring-buffer queues,
 * hash maps) except delayed retries (O(log n) heap); a single timer, armed
 * for the earliest delayed task and only while a consumer waits, drives
 * retries through `ctx.clock`, so a fake clock controls them in tests.
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
  type Clock,
  closeOnAbort,
  type DeadLetterPage,
  type DeadLetterSelector,
  type Delivery,
  type Logger,
  ownReceipt,
  type PluginContext,
  type Settlement,
  SETTLEMENT_EVENT,
  type Task,
  type TaskError,
  type TaskEvent,
  type TaskRecord,
  transition,
} from "../../core/mod.ts";
import { Deque, DueHeap } from "./_collections.ts";
import {
  type Entry,
  PRIORITY_SCHEDULE,
  PriorityQueues,
  type Producer,
  Waiters,
} from "./_queues.ts";
import { DeadLetterStore } from "./_dead_letters.ts";
import { Inflight } from "./_inflight.ts";
import type { MemoryBrokerOptions } from "./_config.ts";

export { PRIORITY_SCHEDULE };

/** The broker's handle in a {@link Delivery}; settled once. */
class Receipt {
  settled = false;
  constructor(readonly owner: MemoryBroker, readonly entry: Entry, readonly consumer: string) {}
}

/**
 * An in-process {@link BrokerInstance}. Created by the `memory` plugin;
 * construct directly only in tests.
 */
export class MemoryBroker implements BrokerInstance {
  readonly shared = false;
  readonly capabilities = ALL_CAPABILITIES;

  readonly #name: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #options: MemoryBrokerOptions;

  readonly #queues = new PriorityQueues<Entry>();
  readonly #delayed = new DueHeap<Entry>();
  #order = 0;

  /** Every task not completed: created, queued, in flight, delayed, dead. */
  readonly #live = new Map<string, Entry>();
  /** Records of completed tasks, kept for `retention` / `max_retained`. */
  readonly #done = new Map<string, TaskRecord>();
  readonly #doneOrder = new Deque<TaskRecord>();
  readonly #dead: DeadLetterStore<Entry>;

  readonly #inflight = new Inflight<Receipt>();

  /** Wake-up functions of reserves waiting for work, oldest first. */
  readonly #consumers = new Waiters();
  /** Enqueues waiting for room (only with `capacity`), oldest first. */
  readonly #producers = new Deque<Producer>();
  #timer: { due: number; abort: AbortController } | undefined;
  #closed = false;
  readonly #stopListening: () => void;

  constructor(
    options: MemoryBrokerOptions,
    ctx: Pick<PluginContext, "name" | "clock" | "logger" | "signal">,
  ) {
    this.#options = options;
    this.#name = ctx.name;
    this.#clock = ctx.clock;
    this.#logger = ctx.logger;
    this.#dead = new DeadLetterStore(options.max_dead_letters, {
      broker: ctx.name,
      logger: ctx.logger,
    });
    this.#stopListening = closeOnAbort(ctx.signal, this);
  }

  // ------------------------------------------------------------ enqueue

  enqueue(tasks: readonly Task[]): Promise<void> {
    if (this.#closed) return Promise.reject(brokerClosedError(this.#name));
    if (tasks.length === 0) return Promise.resolve();
    const now = this.#clock.now();
    const seen = tasks.length > 1 ? new Set<string>() : undefined;
    for (const task of tasks) {
      if (this.#live.has(task.id) || seen?.has(task.id)) {
        return Promise.reject(new Error(`Task "${task.id}" is already in broker "${this.#name}"`));
      }
      seen?.add(task.id);
      const priority = task.priority ?? "normal";
      if (!this.#queues.has(priority)) {
        return Promise.reject(
          new Error(`Task "${task.id}" has an unknown priority "${String(priority)}"`),
        );
      }
    }
    const entries = tasks.map((task) => this.#newEntry(task, now));
    if (this.#options.capacity === undefined) {
      for (const entry of entries) this.#place(entry, "enqueue", now, false);
      this.#wakeConsumers();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.#producers.push({ entries, next: 0, resolve, reject });
      this.#admitProducers(now);
    });
  }

  #newEntry(task: Task, now: number): Entry {
    const priority = task.priority ?? "normal";
    const record: TaskRecord = {
      id: task.id,
      type: task.type,
      state: "created",
      attempts: task.attempts,
      priority,
      created_at: task.created_at,
      updated_at: now,
    };
    if (task.pipeline !== undefined) record.pipeline = task.pipeline;
    const entry: Entry = { task: { ...task }, record, due: 0, order: 0 };
    this.#live.set(task.id, entry);
    this.#done.delete(task.id); // a completed id may start a new life
    return entry;
  }

  /** Moves waiting producers' tasks into the queue while there is room, in arrival order. */
  #admitProducers(now: number): void {
    const capacity = this.#options.capacity;
    if (capacity === undefined) return;
    let admitted = false;
    while (this.#queues.length < capacity) {
      const producer = this.#producers.peek();
      if (!producer) break;
      while (producer.next < producer.entries.length && this.#queues.length < capacity) {
        this.#place(producer.entries[producer.next++]!, "enqueue", now, false);
        admitted = true;
      }
      if (producer.next < producer.entries.length) break;
      this.#producers.shift();
      producer.resolve();
    }
    if (admitted) this.#wakeConsumers();
  }

  /** Puts an entry in its priority queue through the state machine. */
  #place(entry: Entry, event: TaskEvent, now: number, front: boolean): void {
    const record = entry.record;
    record.state = transition(record.state, event);
    record.updated_at = now;
    this.#queues.push(entry, front);
  }

  // ------------------------------------------------------------ reserve

  async reserve(consumer: string, max: number, signal: AbortSignal): Promise<Delivery[]> {
    checkReserveSize(max);
    for (;;) {
      if (this.#closed || signal.aborted) return [];
      this.#promoteDue(this.#clock.now());
      if (this.#queues.length > 0) return this.#take(consumer, max);
      await this.#waitForWork(signal);
    }
  }

  #take(consumer: string, max: number): Delivery[] {
    const now = this.#clock.now();
    const out: Delivery[] = [];
    while (out.length < max) {
      const entry = this.#queues.next();
      if (!entry) break;
      const record = entry.record;
      record.state = transition(record.state, "assign");
      record.worker = consumer;
      record.updated_at = now;
      const receipt = new Receipt(this, entry, consumer);
      this.#inflight.add(receipt);
      // A copy per delivery, as a serializing broker would hand out.
      out.push({ task: { ...entry.task }, receipt });
    }
    this.#admitProducers(now);
    return out;
  }

  #waitForWork(signal: AbortSignal): Promise<void> {
    const woken = this.#consumers.wait(signal);
    this.#armTimer();
    return woken;
  }

  /** Wakes as many waiting reserves as there are queued tasks (each takes at least one). */
  #wakeConsumers(): void {
    this.#consumers.wake(this.#queues.length);
  }

  /** Moves delayed tasks that are due into their queues. */
  #promoteDue(now: number): void {
    let moved = false;
    for (;;) {
      const entry = this.#delayed.peek();
      if (!entry || entry.due > now) break;
      this.#delayed.pop();
      delete entry.record.due_at;
      this.#place(entry, "enqueue", now, false);
      moved = true;
    }
    if (moved) this.#wakeConsumers();
  }

  /**
   * Keeps one timer for the earliest delayed task while a reserve waits;
   * otherwise reserves promote due tasks themselves when they look.
   */
  #armTimer(): void {
    const earliest = this.#delayed.peek();
    if (!earliest || this.#consumers.size === 0 || this.#closed) return;
    if (this.#timer && this.#timer.due <= earliest.due) return;
    this.#timer?.abort.abort();
    const timer = { due: earliest.due, abort: new AbortController() };
    this.#timer = timer;
    this.#clock.sleep(Math.max(0, timer.due - this.#clock.now()), timer.abort.signal).then(
      () => {
        if (this.#timer !== timer) return;
        this.#timer = undefined;
        this.#promoteDue(this.#clock.now());
        this.#armTimer();
      },
      () => {}, // cancelled by an earlier due time or by close()
    );
  }

  // ------------------------------------------------------------ settle

  started(deliveries: readonly Delivery[]): Promise<void> {
    try {
      const receipts = checkStarts(
        deliveries,
        (d) => this.#receipt(d),
        (r) => r.entry.record.state,
      );
      const now = this.#clock.now();
      for (const r of receipts) {
        r.entry.record.state = transition(r.entry.record.state, "start");
        r.entry.record.updated_at = now;
      }
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  settle(settlements: readonly Settlement[]): Promise<void> {
    try {
      this.#settle(settlements);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #settle(settlements: readonly Settlement[]): void {
    // Check the whole batch before changing anything: all or nothing.
    const receipts = checkSettlements(
      settlements,
      (d) => this.#receipt(d),
      (r) => r.entry.record.state,
    );

    const now = this.#clock.now();
    const released: Entry[] = [];
    let delayed = false;
    for (let i = 0; i < settlements.length; i++) {
      const s = settlements[i]!;
      const receipt = receipts[i]!;
      this.#release(receipt);
      const entry = receipt.entry;
      const record = entry.record;
      // A run happened when the delivery was started; releasing never counts.
      const ran = record.state === "running" && s.outcome !== "released";
      if (ran) entry.task.attempts = ++record.attempts;
      record.state = transition(record.state, SETTLEMENT_EVENT[s.outcome]);
      record.updated_at = now;
      switch (s.outcome) {
        case "completed":
          record.completed_at = now;
          this.#live.delete(record.id);
          this.#done.set(record.id, record);
          this.#doneOrder.push(record);
          break;
        case "retry":
          record.last_error = { ...s.error };
          record.due_at = entry.due = now + s.delay;
          entry.order = this.#order++;
          this.#delayed.push(entry);
          delayed = true;
          break;
        case "dead_letter":
          record.last_error = { ...s.error };
          record.dead_lettered_at = now;
          // Quarantine: only the failed samples stay, under the same id.
          if (s.task) entry.task = { ...s.task, attempts: entry.task.attempts };
          this.#addDead(entry, s.error, now);
          break;
        case "released":
          released.push(entry);
          break;
      }
    }
    // Released tasks go back to the front, keeping their relative order.
    for (let i = released.length - 1; i >= 0; i--) this.#queues.push(released[i]!, true);
    if (delayed) {
      this.#promoteDue(now); // zero delays are due at once
      this.#armTimer();
    }
    if (released.length > 0) this.#wakeConsumers();
    this.#prune(now);
  }

  #receipt(delivery: Delivery): Receipt {
    return ownReceipt(
      delivery,
      (r): r is Receipt => r instanceof Receipt && r.owner === this,
      this.#name,
    );
  }

  #release(receipt: Receipt): void {
    receipt.settled = true;
    this.#inflight.delete(receipt);
  }

  /** Forgets completed records past `retention` or beyond `max_retained`. */
  #prune(now: number): void {
    const { retention, max_retained } = this.#options;
    const order = this.#doneOrder;
    for (;;) {
      const record = order.peek();
      if (!record) break;
      if (order.length <= max_retained && (record.completed_at ?? 0) + retention > now) break;
      order.shift();
      if (this.#done.get(record.id) === record) this.#done.delete(record.id);
    }
  }

  // ------------------------------------------------------------ dead letters

  #addDead(entry: Entry, error: TaskError, now: number): void {
    const dropped = this.#dead.add(entry, error, now);
    if (dropped) this.#live.delete(dropped.task.id);
  }

  listDeadLetters(
    selector: DeadLetterSelector & { limit?: number; cursor?: string },
  ): Promise<DeadLetterPage> {
    try {
      return Promise.resolve(this.#dead.list(selector));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  replayDeadLetters(selector: DeadLetterSelector): Promise<number> {
    const entries = this.#dead.take(selector);
    const now = this.#clock.now();
    for (const entry of entries) {
      entry.task.attempts = entry.record.attempts = 0;
      delete entry.record.dead_lettered_at;
      this.#place(entry, "replay", now, false);
    }
    if (entries.length > 0) this.#wakeConsumers();
    return Promise.resolve(entries.length);
  }

  purgeDeadLetters(selector: DeadLetterSelector): Promise<number> {
    const entries = this.#dead.take(selector);
    for (const entry of entries) this.#live.delete(entry.task.id);
    return Promise.resolve(entries.length);
  }

  // ------------------------------------------------------------ status

  getTask(id: string): Promise<TaskRecord | undefined> {
    this.#prune(this.#clock.now());
    const record = this.#live.get(id)?.record ?? this.#done.get(id);
    return Promise.resolve(record && { ...record });
  }

  depth(): Promise<BrokerDepth> {
    const now = this.#clock.now();
    this.#promoteDue(now);
    this.#prune(now);
    return Promise.resolve({
      queued: this.#queues.length,
      inflight: this.#inflight.count(),
      delayed: this.#delayed.length,
      dead: this.#dead.size,
    });
  }

  /** Deliveries held by `consumer` (or by everyone) and not yet settled. */
  inflight(consumer?: string): number {
    return this.#inflight.count(consumer);
  }

  health(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Ends waiting reserves (they resolve `[]`) and rejects enqueues waiting
   * for room. Settling deliveries still works. Safe to call twice.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#stopListening();
    this.#timer?.abort.abort();
    this.#timer = undefined;
    this.#consumers.wake(Infinity);
    for (let p = this.#producers.shift(); p; p = this.#producers.shift()) {
      for (let i = p.next; i < p.entries.length; i++) this.#live.delete(p.entries[i]!.task.id);
      p.reject(brokerClosedError(this.#name));
    }
    return Promise.resolve();
  }
}

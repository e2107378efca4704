/**
 * A complete third-party broker that implements the core of the broker
 * contract and no optional capability, the way a broker over a log (Kafka,
 * NATS JetStream) would: tasks are appended to a log read by one consumer
 * group's cursor, and what comes back unfinished (released, retried) is
 * redelivered before the cursor moves on. No priorities, no delayed set, no
 * task records, no browsable dead letters: it declares only `ordered` (one
 * log keeps one order), so the runtime waits out retry delays itself and
 * the admin API answers 501 for dead-letter browsing. The log lives in this process, so the example
 * runs anywhere; a real one keeps it in the log system.
 *
 * Loaded with `plugins: [./brokers/log.ts]`; tested by `log_test.ts` with the
 * shared conformance suite. It imports only the public SDK.
 *
 * @module
 */
import {
  brokerClosedError,
  type BrokerCore,
  type BrokerDepth,
  checkReserveSize,
  checkSettlements,
  checkStarts,
  closeOnAbort,
  defineBroker,
  type Delivery,
  ownReceipt,
  type Settlement,
  SETTLEMENT_EVENT,
  type Task,
  type TaskState,
  transition,
  z,
} from "../../core/mod.ts";

/** The broker's handle in a delivery. */
class Receipt {
  settled = false;
  state: TaskState = "assigned";
  constructor(readonly owner: LogBroker, readonly task: Task) {}
}

/** An in-process log with one consumer group. */
export class LogBroker implements BrokerCore {
  readonly shared = false;
  // One log, one order; nothing else beyond the core.
  readonly capabilities = { ordered: true };
  #name: string;
  #log: Task[] = [];
  /** The consumer group's position in `#log`. */
  #cursor = 0;
  /** Released and retried tasks, redelivered before the cursor moves on. */
  #redeliver: Task[] = [];
  #inflight = new Set<Receipt>();
  #dead: Task[] = [];
  /** Ids held anywhere (log, redelivery, in flight, dead), to refuse a duplicate. */
  #held = new Set<string>();
  #waiters = new Set<() => void>();
  #closed = false;
  #stopListening: () => void;

  constructor(name: string, signal: AbortSignal) {
    this.#name = name;
    this.#stopListening = closeOnAbort(signal, this);
  }

  enqueue(tasks: readonly Task[]): Promise<void> {
    if (this.#closed) return Promise.reject(brokerClosedError(this.#name));
    const ids = new Set<string>();
    for (const { id } of tasks) {
      if (this.#held.has(id) || ids.has(id)) {
        return Promise.reject(new Error(`Task "${id}" is already held by broker "${this.#name}"`));
      }
      ids.add(id);
    }
    for (const task of tasks) {
      this.#log.push(task);
      this.#held.add(task.id);
    }
    this.#wake();
    return Promise.resolve();
  }

  async reserve(_consumer: string, max: number, signal: AbortSignal): Promise<Delivery[]> {
    checkReserveSize(max);
    while (!signal.aborted && !this.#closed && this.#available() === 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#waiters.delete(done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.#waiters.add(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
    if (signal.aborted || this.#closed) return [];
    const deliveries: Delivery[] = [];
    while (deliveries.length < max && this.#available() > 0) {
      const task = this.#redeliver.shift() ?? this.#log[this.#cursor++]!;
      const receipt = new Receipt(this, task);
      this.#inflight.add(receipt);
      deliveries.push({ task: structuredClone(task), receipt });
    }
    this.#compact();
    return deliveries;
  }

  // Promise.try: a refused call rejects rather than throws, as the contract says.
  started(deliveries: readonly Delivery[]): Promise<void> {
    return Promise.try(() => {
      const receipts = checkStarts(deliveries, (d) => this.#receipt(d), (r) => r.state);
      for (const r of receipts) r.state = transition(r.state, "start");
    });
  }

  settle(settlements: readonly Settlement[]): Promise<void> {
    return Promise.try(() => this.#settle(settlements));
  }

  #settle(settlements: readonly Settlement[]): void {
    const receipts = checkSettlements(settlements, (d) => this.#receipt(d), (r) => r.state);
    settlements.forEach((s, i) => {
      const receipt = receipts[i]!;
      const ran = receipt.state === "running";
      receipt.settled = true;
      this.#inflight.delete(receipt);
      const task = receipt.task;
      if (ran && s.outcome !== "released") task.attempts++;
      transition(receipt.state, SETTLEMENT_EVENT[s.outcome]);
      if (s.outcome === "completed") this.#held.delete(task.id);
      // No delayed set: the runtime has waited out a retry's delay already.
      else if (s.outcome === "retry") this.#redeliver.push(task);
      else if (s.outcome === "released") this.#redeliver.unshift(task);
      else this.#dead.push(s.task ?? task);
    });
    this.#wake();
  }

  depth(): Promise<BrokerDepth> {
    return Promise.resolve({
      queued: this.#available(),
      inflight: this.#inflight.size,
      delayed: 0,
      dead: this.#dead.length,
    });
  }

  health(): Promise<void> {
    return this.#closed ? Promise.reject(brokerClosedError(this.#name)) : Promise.resolve();
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#stopListening();
    this.#wake();
    return Promise.resolve();
  }

  #available(): number {
    return this.#redeliver.length + this.#log.length - this.#cursor;
  }

  #receipt(delivery: Delivery): Receipt {
    return ownReceipt(
      delivery,
      (r): r is Receipt => r instanceof Receipt && r.owner === this,
      this.#name,
    );
  }

  /** Drops what the cursor has passed, as a log's retention would. */
  #compact(): void {
    if (this.#cursor < 1024 || this.#cursor * 2 < this.#log.length) return;
    this.#log = this.#log.slice(this.#cursor);
    this.#cursor = 0;
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

export default defineBroker({
  name: "log",
  summary: "An in-process log with the core broker contract only (example plugin)",
  version: "1.0.0",
  shared: false,
  config: z.strictObject({}),
  create(_config, ctx) {
    return new LogBroker(ctx.name, ctx.signal);
  },
});

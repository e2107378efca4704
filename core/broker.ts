/**
 * The broker contract (deliveries, settlements, dead letters, the
 * {@link BrokerInstance} interface), and the checks every broker makes the
 * same way, so that brokers answer the contract with the same errors:
 * receipts, settlements, reserve sizes, a closed broker, closing when the
 * plugin context aborts.
 *
 * @module
 */
import { duration, type Priority, z } from "./schema.ts";
import type { Task, TaskError, TaskEvent, TaskRecord, TaskState } from "./task.ts";
import { transition } from "./task.ts";

/** A task handed to a consumer, with the broker's receipt for settling it. */
export interface Delivery {
  task: Task;
  /**
   * Set when the stored message could not be decoded into a task (bad JSON,
   * missing fields); the runtime dead-letters it with this reason.
   */
  invalid?: string;
  /** The broker's own handle (list element, stream id…). */
  receipt: unknown;
}

/**
 * The receipt of `delivery`, for a broker's `started` and `settle`: throws
 * when `isOwn` says another broker handed it out, or when it is already
 * settled, with the messages the contract names.
 */
export function ownReceipt<R extends { settled: boolean }>(
  delivery: Delivery,
  isOwn: (receipt: unknown) => receipt is R,
  broker: string,
): R {
  const receipt = delivery.receipt;
  if (!isOwn(receipt)) {
    throw new Error(
      `Delivery of task "${delivery.task?.id}" does not come from broker "${broker}"`,
    );
  }
  if (receipt.settled) {
    throw new Error(`Delivery of task "${delivery.task.id}" is already settled`);
  }
  return receipt;
}

/**
 * How a delivery ended. Each delivery is settled exactly once; settling it
 * again rejects with `Delivery of task "…" is already settled`.
 *
 * Attempts: settling a started delivery as `completed`, `retry` or
 * `dead_letter` adds one attempt; `released` (and dead-lettering a delivery
 * that never started, such as an undecodable message) adds none.
 *
 * A `dead_letter` settlement with `task` quarantines part of a task: the
 * rest of its samples completed, and the broker keeps `task` (same id, a
 * payload holding only the failed samples) as the dead letter instead of
 * the delivered one.
 */
export type Settlement =
  | { delivery: Delivery; outcome: "completed" }
  | { delivery: Delivery; outcome: "retry"; delay: number; error: TaskError }
  | { delivery: Delivery; outcome: "dead_letter"; error: TaskError; task?: Task }
  | { delivery: Delivery; outcome: "released" };

/** Queue sizes, for metrics and status. */
export interface BrokerDepth {
  queued: number;
  inflight: number;
  delayed: number;
  dead: number;
}

/** A dead-lettered task with why and when. */
export interface DeadLetter {
  task: Task;
  error: TaskError;
  attempts: number;
  dead_lettered_at: number;
  /** The raw message when it could not be decoded. */
  raw?: string;
  /**
   * The raw message, base64-encoded, when its bytes are not valid UTF-8
   * (so `raw` could not hold them exactly); set instead of `raw`.
   */
  raw_base64?: string;
}

/** Selects dead letters: by ids, or by filter; no selector means all. */
export interface DeadLetterSelector {
  ids?: readonly string[];
  type?: string;
  pipeline?: string;
}

/** A page of dead letters. */
export interface DeadLetterPage {
  items: DeadLetter[];
  /** Pass back to get the next page; absent on the last page. */
  cursor?: string;
}

/**
 * The optional parts of the broker contract. A broker declares the ones it
 * implements in {@link BrokerCore.capabilities}; the runtime, the admin API
 * and the conformance suite go by the declaration, so a broker on a system
 * without list semantics (a log such as NATS JetStream or Kafka) implements
 * the core alone and fakes nothing.
 */
export interface BrokerCapabilities {
  /**
   * `reserve()` serves higher priorities first without starving lower ones
   * (see {@link PRIORITY_SCHEDULE}). Without it, tasks come out in enqueue
   * order whatever their `priority`.
   */
  priorities?: boolean;
  /**
   * A `retry` settlement holds the task back for its `delay`. Without it the
   * runtime keeps the delivery (still in flight) until the delay has passed
   * and only then settles it, with delay 0; the broker must then requeue a
   * `retry` at once and keep a delivery leased for as long as it is unsettled.
   */
  delayedRetries?: boolean;
  /** The broker keeps task records: {@link TaskRecords.getTask}. */
  taskRecords?: boolean;
  /**
   * Dead letters can be listed, replayed and purged:
   * {@link DeadLetterBrowsing}. Without it dead letters still leave the queue
   * (counted in `depth().dead`), and the admin API answers 501 for them.
   */
  deadLetterBrowsing?: boolean;
}

/** The names of the optional capabilities. */
export type BrokerCapability = keyof BrokerCapabilities;

/** Every optional capability, in the order documentation lists them. */
export const BROKER_CAPABILITIES: readonly BrokerCapability[] = [
  "priorities",
  "delayedRetries",
  "taskRecords",
  "deadLetterBrowsing",
];

/**
 * The part of the broker contract every broker implements: a task queue
 * with at-least-once delivery and settlements. Brokers store and move tasks;
 * the runtime decides what happens to them (see `Settlement`).
 */
export interface BrokerCore {
  /** Whether several processes can share this broker (split hub/processor roles). */
  readonly shared: boolean;
  /**
   * Whether what `enqueue()` resolved for survives a crash of this process
   * (a Redis server or a database file holds it). The hub then gives its
   * acknowledgements (HTTP 202, MQTT PUBACK) only once the broker holds the
   * samples; with a broker that is not durable, when they are queued.
   */
  readonly durable?: boolean;
  /** The optional capabilities this broker implements; see {@link BrokerCapabilities}. */
  readonly capabilities: Readonly<BrokerCapabilities>;
  /**
   * Puts tasks in the queue; resolves once the broker holds them. A batch
   * holding an id the broker still holds (queued, in flight, delayed or dead)
   * is refused whole.
   */
  enqueue(tasks: readonly Task[]): Promise<void>;
  /**
   * Waits until at least one task is due, then returns up to `max` of them.
   * Resolves `[]` when `signal` aborts. Reserved tasks are `assigned` to
   * `consumer` until settled.
   */
  reserve(consumer: string, max: number, signal: AbortSignal): Promise<Delivery[]>;
  /** Marks reserved tasks `running`. */
  started(deliveries: readonly Delivery[]): Promise<void>;
  /** Settles deliveries: each exactly once. */
  settle(settlements: readonly Settlement[]): Promise<void>;
  /** How many tasks are queued, in flight, delayed and dead. */
  depth(): Promise<BrokerDepth>;
  /** Throws when the broker is unreachable. */
  health(): Promise<void>;
  /** Stops waiting reserves and releases connections. Safe to call twice. */
  close(): Promise<void>;
}

/** Capability `taskRecords`: the broker keeps a record of each task. */
export interface TaskRecords {
  /** The record of a task while it is retained, or `undefined`. */
  getTask(id: string): Promise<TaskRecord | undefined>;
}

/** Capability `deadLetterBrowsing`: dead letters can be listed, replayed and purged. */
export interface DeadLetterBrowsing {
  /**
   * A page of dead letters, oldest first. Throws `RangeError` for a
   * malformed `cursor` or `limit` (the admin API answers 400 for it).
   */
  listDeadLetters(
    selector: DeadLetterSelector & { limit?: number; cursor?: string },
  ): Promise<DeadLetterPage>;
  /** Moves selected dead letters back to the queue with attempts reset; returns how many. */
  replayDeadLetters(selector: DeadLetterSelector): Promise<number>;
  /** Deletes selected dead letters; returns how many. */
  purgeDeadLetters(selector: DeadLetterSelector): Promise<number>;
}

/**
 * Every capability on: what a broker that keeps queues, a delay set, task
 * records and a dead-letter list (as the built-in ones do) declares.
 */
export const ALL_CAPABILITIES: Readonly<Required<BrokerCapabilities>> = Object.freeze({
  priorities: true,
  delayedRetries: true,
  taskRecords: true,
  deadLetterBrowsing: true,
});

/** The methods each capability adds to the core. */
interface CapabilityMethods {
  priorities: unknown;
  delayedRetries: unknown;
  taskRecords: TaskRecords;
  deadLetterBrowsing: DeadLetterBrowsing;
}

/** The methods of a capability, and which capability each method belongs to. */
const METHODS_OF: Readonly<Record<BrokerCapability, readonly string[]>> = {
  priorities: [],
  delayedRetries: [],
  taskRecords: ["getTask"],
  deadLetterBrowsing: ["listDeadLetters", "replayDeadLetters", "purgeDeadLetters"],
};

/**
 * What a broker plugin creates: the core, plus the methods of the
 * capabilities it declares.
 */
export type BrokerInstance = BrokerCore & Partial<TaskRecords> & Partial<DeadLetterBrowsing>;

/**
 * Whether `broker` declares `capability` (and so has its methods).
 *
 * @example
 * ```ts
 * import { type BrokerInstance, hasCapability } from "@telemetryhub/telemetryhub";
 * async function stateOf(broker: BrokerInstance, id: string) {
 *   return hasCapability(broker, "taskRecords") ? (await broker.getTask(id))?.state : undefined;
 * }
 * ```
 */
export function hasCapability<C extends BrokerCapability>(
  broker: BrokerInstance,
  capability: C,
): broker is BrokerInstance & CapabilityMethods[C] {
  return broker.capabilities[capability] === true;
}

/**
 * Checks that a broker's declaration matches what it has: every declared
 * capability's methods exist and no method of an undeclared one does (a
 * method the runtime would never call is a mistake, too). Throws naming
 * `name` and the capability.
 *
 * @example
 * ```ts
 * import { checkCapabilities } from "@telemetryhub/telemetryhub";
 * const broker = { capabilities: { taskRecords: true }, getTask: () => Promise.resolve(undefined) };
 * checkCapabilities(broker, "main");
 * ```
 */
export function checkCapabilities(
  broker: { readonly capabilities?: Readonly<BrokerCapabilities> },
  name: string,
): void {
  const declared = broker.capabilities;
  if (typeof declared !== "object" || declared === null) {
    throw new Error(
      `Broker "${name}" declares no capabilities: give it "capabilities" (for example {} for ` +
        `the core alone)`,
    );
  }
  const known = new Set<string>(BROKER_CAPABILITIES);
  for (const key of Object.keys(declared)) {
    if (!known.has(key)) {
      throw new Error(
        `Broker "${name}" declares unknown capability "${key}"; known: ` +
          BROKER_CAPABILITIES.join(", "),
      );
    }
  }
  const methods = broker as unknown as Record<string, unknown>;
  for (const capability of BROKER_CAPABILITIES) {
    const on = declared[capability] === true;
    for (const method of METHODS_OF[capability]) {
      const present = typeof methods[method] === "function";
      if (on && !present) {
        throw new Error(
          `Broker "${name}" declares capability "${capability}" but has no ${method}()`,
        );
      }
      if (!on && present) {
        throw new Error(
          `Broker "${name}" has ${method}() but does not declare capability "${capability}"`,
        );
      }
    }
  }
}

/**
 * The task event each settlement outcome applies to the task's state.
 *
 * @example
 * ```ts
 * import { SETTLEMENT_EVENT, transition } from "@telemetryhub/telemetryhub";
 * transition("running", SETTLEMENT_EVENT.retry); // "failed"
 * ```
 */
export const SETTLEMENT_EVENT: Readonly<Record<Settlement["outcome"], TaskEvent>> = {
  completed: "complete",
  retry: "fail",
  dead_letter: "dead_letter",
  released: "release",
};

/**
 * Checks a batch of settlements before a broker changes anything (all or
 * nothing): each receipt is the broker's own and not settled (`receiptOf`,
 * usually {@link ownReceipt}), no delivery is settled twice in the batch,
 * the outcome is a legal move from the task's state, and a retry's delay is
 * a non-negative number. Returns the receipts in the order of `settlements`.
 *
 * @example
 * ```ts
 * import { checkSettlements, type Settlement } from "@telemetryhub/telemetryhub";
 * class Receipt {
 *   settled = false;
 * }
 * const settlements: Settlement[] = [];
 * const receipts = checkSettlements(
 *   settlements,
 *   (delivery) => delivery.receipt as Receipt,
 *   () => "running",
 * );
 * ```
 */
export function checkSettlements<R>(
  settlements: readonly Settlement[],
  receiptOf: (delivery: Delivery) => R,
  stateOf: (receipt: R) => TaskState,
): R[] {
  const receipts: R[] = [];
  const batch = new Set<R>();
  for (const s of settlements) {
    const receipt = receiptOf(s.delivery);
    if (batch.has(receipt)) {
      throw new Error(`Delivery of task "${s.delivery.task.id}" is settled twice in one batch`);
    }
    batch.add(receipt);
    transition(stateOf(receipt), SETTLEMENT_EVENT[s.outcome]);
    if (s.outcome === "retry" && !(Number.isFinite(s.delay) && s.delay >= 0)) {
      throw new RangeError(
        `Retry delay of task "${s.delivery.task.id}" must be a non-negative number of ` +
          `milliseconds, got "${s.delay}"`,
      );
    }
    receipts.push(receipt);
  }
  return receipts;
}

/**
 * Checks a batch of deliveries a consumer has started, before a broker marks
 * any: each receipt is the broker's own and not settled, and each task may
 * start from its state. Returns the receipts in the order of `deliveries`.
 *
 * @example
 * ```ts
 * import { checkStarts, type Delivery } from "@telemetryhub/telemetryhub";
 * const deliveries: Delivery[] = [];
 * const receipts = checkStarts(deliveries, (d) => d.receipt, () => "assigned");
 * ```
 */
export function checkStarts<R>(
  deliveries: readonly Delivery[],
  receiptOf: (delivery: Delivery) => R,
  stateOf: (receipt: R) => TaskState,
): R[] {
  const receipts = deliveries.map(receiptOf);
  for (const r of receipts) transition(stateOf(r), "start");
  return receipts;
}

/**
 * Throws the contract's `RangeError` unless `max`, the most deliveries a
 * reserve may return, is a positive integer.
 *
 * @example
 * ```ts
 * import { checkReserveSize } from "@telemetryhub/telemetryhub";
 * checkReserveSize(10);
 * ```
 */
export function checkReserveSize(max: number): void {
  if (!Number.isInteger(max) || max < 1) {
    throw new RangeError(`Reserve size must be a positive integer, got "${max}"`);
  }
}

/**
 * The error of an operation on a closed broker, such as an enqueue.
 *
 * @example
 * ```ts
 * import { brokerClosedError } from "@telemetryhub/telemetryhub";
 * brokerClosedError("main").message; // 'Broker "main" is closed'
 * ```
 */
export function brokerClosedError(broker: string): Error {
  return new Error(`Broker "${broker}" is closed`);
}

/**
 * Closes `broker` when `signal` (its plugin context's) aborts. Returns the
 * function that stops listening, for the broker's own `close()`.
 *
 * @example
 * ```ts
 * import { closeOnAbort } from "@telemetryhub/telemetryhub";
 * const broker = { close: () => Promise.resolve() };
 * const stopListening = closeOnAbort(new AbortController().signal, broker);
 * stopListening();
 * ```
 */
export function closeOnAbort(
  signal: AbortSignal,
  broker: { close(): Promise<void> },
): () => void {
  const onAbort = (): void => {
    void broker.close();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}

/**
 * Weighted round-robin over the priority queues, for brokers that keep one
 * queue per priority (the built-in ones all follow it): out of every 7 tasks
 * taken while all three queues hold tasks, 4 are `high`, 2 `normal` and 1
 * `low`, interleaved so no priority waits a whole round. A slot whose queue
 * is empty passes to the next, so a lone priority gets every task.
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
 * The opaque dead-letter page cursor after dead letter number `seq`;
 * `prefix` names the broker kind, so one broker's cursor is not taken for
 * another's (see {@link decodeDeadLetterCursor}).
 */
export function encodeDeadLetterCursor(prefix: string, seq: number): string {
  return btoa(`${prefix}${seq}`);
}

/** The dead-letter number of a cursor, or `undefined` when it is not one `prefix` made. */
export function decodeDeadLetterCursor(prefix: string, cursor: string): number | undefined {
  let text: string;
  try {
    text = atob(cursor);
  } catch {
    return undefined;
  }
  if (!text.startsWith(prefix)) return undefined;
  const seq = Number(text.slice(prefix.length));
  return Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
}

/**
 * The config fields of a broker that keeps task records and dead letters in
 * a bounded store of its own (the memory and sqlite brokers): spread them
 * into its `config` schema so the fields read and document the same.
 *
 * @example
 * ```ts
 * import { recordRetentionFields, z } from "@telemetryhub/telemetryhub";
 * const config = z.strictObject({ ...recordRetentionFields });
 * config.parse({}).max_dead_letters; // 10000
 * ```
 */
export const recordRetentionFields: {
  retention: z.ZodPrefault<ReturnType<typeof duration>>;
  max_retained: z.ZodDefault<z.ZodInt>;
  max_dead_letters: z.ZodDefault<z.ZodInt>;
} = {
  retention: duration().prefault("5m").describe(
    "How long the record of a completed task stays readable by id (admin API, getTask())",
  ),
  max_retained: z.int().min(0).default(10_000).describe(
    "Most completed task records kept; beyond it the oldest are forgotten first",
  ),
  max_dead_letters: z.int().min(1).default(10_000).describe(
    "Most dead letters kept until replayed or purged; when full the oldest is dropped " +
      "and a warning is logged",
  ),
};

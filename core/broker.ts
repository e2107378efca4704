/**
 * The broker contract: deliveries, settlements, dead letters, the required
 * {@link BrokerCore} and the optional capabilities a broker declares. What
 * broker implementations share to answer it the same way (receipt and
 * settlement checks, errors, the priority schedule) is in `broker_kit.ts`.
 *
 * @module
 */
import type { Task, TaskError, TaskEvent, TaskRecord } from "./task.ts";

/** A task handed to a consumer, with the broker's receipt for settling it. */
export interface Delivery {
  /** The task as the broker holds it; its `attempts` are those made before this delivery. */
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
  /** Tasks waiting to be reserved (due now). */
  queued: number;
  /** Tasks reserved by a consumer and not yet settled. */
  inflight: number;
  /** Tasks settled `retry` that wait for their delay to pass. */
  delayed: number;
  /** Dead letters the broker holds. */
  dead: number;
}

/** A dead-lettered task with why and when. */
export interface DeadLetter {
  /** The task as dead-lettered (for a quarantine, only its failed samples). */
  task: Task;
  /** Why it was dead-lettered: the last handler error, or the reason it could not be decoded. */
  error: TaskError;
  /** Attempts made when it was dead-lettered. */
  attempts: number;
  /** Milliseconds since the epoch. */
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
  /** Only these task ids; `[]` selects nothing. */
  ids?: readonly string[];
  /** Only tasks of this task type. */
  type?: string;
  /** Only tasks this pipeline produced ({@link Task.pipeline}). */
  pipeline?: string;
}

/** A page of dead letters. */
export interface DeadLetterPage {
  /** Dead letters of this page, oldest first; at most the `limit` asked for. */
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
  /**
   * One order for the whole queue: tasks of one priority come out in the
   * order they were enqueued, a released task comes back first, and dead
   * letters list in the order they died. Without it (a queue spread over
   * shards or partitions) every task is still delivered at least once, and
   * the order holds only within a shard.
   */
  ordered?: boolean;
}

/** The names of the optional capabilities. */
export type BrokerCapability = keyof BrokerCapabilities;

/** Every optional capability, in the order documentation lists them. */
export const BROKER_CAPABILITIES: readonly BrokerCapability[] = [
  "priorities",
  "delayedRetries",
  "taskRecords",
  "deadLetterBrowsing",
  "ordered",
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
  ordered: true,
});

/**
 * The methods each capability adds to the core: what {@link hasCapability}
 * narrows a broker to.
 */
export interface CapabilityMethods {
  /** Adds no method: it changes the order `reserve()` hands tasks out in. */
  priorities: unknown;
  /** Adds no method: it changes what a `retry` settlement does. */
  delayedRetries: unknown;
  /** Adds {@link TaskRecords.getTask}. */
  taskRecords: TaskRecords;
  /** Adds listing, replaying and purging dead letters. */
  deadLetterBrowsing: DeadLetterBrowsing;
  /** Adds no method: it promises one order for the whole queue. */
  ordered: unknown;
}

/** The methods of a capability, and which capability each method belongs to. */
const METHODS_OF: Readonly<Record<BrokerCapability, readonly string[]>> = {
  priorities: [],
  delayedRetries: [],
  taskRecords: ["getTask"],
  deadLetterBrowsing: ["listDeadLetters", "replayDeadLetters", "purgeDeadLetters"],
  ordered: [],
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

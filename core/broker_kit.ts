/**
 * What broker implementations share, so that every broker answers the
 * contract of `broker.ts` with the same errors: receipt and settlement
 * checks, reserve sizes, a closed broker, closing when the plugin context
 * aborts, the priority schedule, dead-letter cursors and the record-retention
 * config fields.
 *
 * @module
 */
import type { Delivery, Settlement } from "./broker.ts";
import { SETTLEMENT_EVENT } from "./broker.ts";
import { duration, type Priority, z } from "./schema.ts";
import type { TaskState } from "./task.ts";
import { transition } from "./task.ts";

/**
 * The receipt of `delivery`, for a broker's `started` and `settle`: throws
 * when `isOwn` says another broker handed it out, or when it is already
 * settled, with the messages the contract names.
 *
 * @example
 * ```ts
 * import { type Delivery, ownReceipt } from "@telemetryhub/telemetryhub";
 * interface Receipt { broker: "myqueue"; settled: boolean }
 * const isOwn = (r: unknown): r is Receipt => (r as Receipt | null)?.broker === "myqueue";
 * function complete(delivery: Delivery): void {
 *   ownReceipt(delivery, isOwn, "myqueue").settled = true;
 * }
 * ```
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
 *
 * @example
 * ```ts
 * import { decodeDeadLetterCursor, encodeDeadLetterCursor } from "@telemetryhub/telemetryhub";
 * const cursor = encodeDeadLetterCursor("myqueue:", 42);
 * decodeDeadLetterCursor("myqueue:", cursor); // 42
 * ```
 */
export function encodeDeadLetterCursor(prefix: string, seq: number): string {
  return btoa(`${prefix}${seq}`);
}

/**
 * The dead-letter number of a cursor, or `undefined` when it is not one `prefix` made.
 *
 * @example
 * ```ts
 * import { decodeDeadLetterCursor, encodeDeadLetterCursor } from "@telemetryhub/telemetryhub";
 * const cursor = encodeDeadLetterCursor("memory:", 42);
 * decodeDeadLetterCursor("myqueue:", cursor); // undefined: another broker's cursor
 * ```
 */
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

/**
 * Checks every broker makes the same way, so that brokers answer the
 * contract with the same errors: settlements, reserve sizes, a closed
 * broker, closing when the plugin context aborts.
 *
 * @module
 */
import type { Delivery, Settlement } from "./plugin.ts";
import { type TaskEvent, type TaskState, transition } from "./task.ts";

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

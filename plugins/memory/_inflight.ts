/**
 * The memory broker's deliveries handed out and not yet settled, by
 * consumer.
 *
 * @module
 */

/** Receipts held by consumers, counted in O(1). */
export class Inflight<R extends { consumer: string }> {
  readonly #byConsumer = new Map<string, Set<R>>();
  #count = 0;

  /** Records a receipt handed to its consumer. */
  add(receipt: R): void {
    let held = this.#byConsumer.get(receipt.consumer);
    if (!held) this.#byConsumer.set(receipt.consumer, held = new Set());
    held.add(receipt);
    this.#count++;
  }

  /** Forgets a receipt (settled); nothing when it is not held. */
  delete(receipt: R): void {
    const held = this.#byConsumer.get(receipt.consumer);
    if (held?.delete(receipt)) {
      this.#count--;
      if (held.size === 0) this.#byConsumer.delete(receipt.consumer);
    }
  }

  /** Receipts held by `consumer`, or by everyone. */
  count(consumer?: string): number {
    if (consumer === undefined) return this.#count;
    return this.#byConsumer.get(consumer)?.size ?? 0;
  }
}

/**
 * The hub queue: a bounded buffer of samples between devices and the
 * gateway. Samples travel as the batches devices emitted; capacity counts
 * samples. When full, `overflow` decides: `block` makes `push` return a
 * promise (backpressure), `drop_oldest` / `drop_newest` drop and count.
 *
 * @module
 */
import type { Sample } from "../sample.ts";

/** Overflow policy when the queue is full. */
export type Overflow = "block" | "drop_oldest" | "drop_newest";

/** Options of {@link HubQueue}. */
export interface HubQueueOptions {
  capacity: number;
  overflow: Overflow;
  /** Called with the number of samples dropped and why. */
  onDrop?: (count: number, reason: "queue_full_oldest" | "queue_full_newest" | "closed") => void;
}

interface BlockedPush {
  batch: Sample[];
  resolve: () => void;
}

/** A bounded FIFO of sample batches. */
export class HubQueue {
  readonly capacity: number;
  readonly overflow: Overflow;
  #onDrop: HubQueueOptions["onDrop"];
  #batches: Sample[][] = [];
  #head = 0; // index of the first batch still in use
  #offset = 0; // samples already taken from the first batch
  #size = 0;
  #blocked: BlockedPush[] = [];
  #waiters: Array<() => void> = [];
  #closed = false;

  constructor({ capacity, overflow, onDrop }: HubQueueOptions) {
    this.capacity = capacity;
    this.overflow = overflow;
    this.#onDrop = onDrop;
  }

  /** Samples waiting. */
  get size(): number {
    return this.#size;
  }

  /** Whether pushing `count` samples now would wait for room (overflow `block` only). */
  wouldBlock(count: number): boolean {
    return this.overflow === "block" &&
      (this.#blocked.length > 0 || this.#size + count > this.capacity);
  }

  /** Producers waiting for room (overflow `block`). */
  get blockedProducers(): number {
    return this.#blocked.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Adds a batch. Returns `undefined` when accepted (or dropped by policy),
   * or a promise that resolves once a blocked batch has been accepted.
   */
  push(batch: Sample[]): void | Promise<void> {
    if (batch.length === 0) return;
    if (this.#closed) {
      this.#onDrop?.(batch.length, "closed");
      return;
    }
    if (this.#blocked.length === 0 && this.#size + batch.length <= this.capacity) {
      this.#append(batch);
      return;
    }
    switch (this.overflow) {
      case "block":
        return new Promise<void>((resolve) => {
          this.#blocked.push({ batch, resolve });
          this.#admitBlocked();
        });
      case "drop_newest": {
        const room = Math.max(0, this.capacity - this.#size);
        if (room > 0) this.#append(batch.slice(0, room));
        this.#onDrop?.(batch.length - room, "queue_full_newest");
        return;
      }
      case "drop_oldest": {
        let kept = batch;
        if (kept.length > this.capacity) {
          this.#onDrop?.(kept.length - this.capacity, "queue_full_oldest");
          kept = kept.slice(kept.length - this.capacity);
        }
        const excess = this.#size + kept.length - this.capacity;
        if (excess > 0) this.#onDrop?.(this.#discardOldest(excess), "queue_full_oldest");
        this.#append(kept);
        return;
      }
    }
  }

  /** Takes up to `max` samples, oldest first, as one array. */
  take(max: number): Sample[] {
    let out: Sample[] = [];
    while (out.length < max && this.#head < this.#batches.length) {
      const batch = this.#batches[this.#head]!;
      const available = batch.length - this.#offset;
      const want = max - out.length;
      if (out.length === 0 && this.#offset === 0 && available <= want) {
        // The whole first batch fits: hand it over without copying (devices give up
        // their arrays when they emit them).
        out = batch;
      } else if (available <= want) {
        for (let i = this.#offset; i < batch.length; i++) out.push(batch[i]!);
      } else {
        for (let i = this.#offset; i < this.#offset + want; i++) out.push(batch[i]!);
        this.#offset += want;
        break;
      }
      this.#batches[this.#head] = EMPTY;
      this.#head++;
      this.#offset = 0;
    }
    this.#size -= out.length;
    this.#compact();
    this.#admitBlocked();
    return out;
  }

  /**
   * Resolves when at least `min` samples wait, the queue closes, or
   * `signal` aborts (use it for timeouts). Never rejects.
   */
  waitFor(min: number, signal?: AbortSignal): Promise<void> {
    if (this.#size >= min || this.#closed || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const check = () => {
        if (this.#size >= min || this.#closed || signal?.aborted) {
          signal?.removeEventListener("abort", onAbort);
          resolve();
          return true;
        }
        return false;
      };
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve();
      };
      const waiter = () => {
        if (!check()) this.#waiters.push(waiter);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /**
   * Stops accepting samples. Producers blocked on a full queue are admitted
   * (capacity is exceeded once rather than losing what they handed over);
   * what is queued can still be taken.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const b of this.#blocked.splice(0)) {
      this.#append(b.batch);
      b.resolve();
    }
    this.#wake();
  }

  #append(batch: Sample[]): void {
    this.#batches.push(batch);
    this.#size += batch.length;
    this.#wake();
  }

  #admitBlocked(): void {
    while (this.#blocked.length > 0) {
      const next = this.#blocked[0]!;
      // A batch larger than the whole queue is admitted once the queue is empty.
      const fits = this.#size + next.batch.length <= this.capacity || this.#size === 0;
      if (!fits) break;
      this.#blocked.shift();
      this.#append(next.batch);
      next.resolve();
    }
  }

  #discardOldest(count: number): number {
    let dropped = 0;
    while (dropped < count && this.#head < this.#batches.length) {
      const batch = this.#batches[this.#head]!;
      const available = batch.length - this.#offset;
      const want = count - dropped;
      if (available <= want) {
        dropped += available;
        this.#batches[this.#head] = EMPTY;
        this.#head++;
        this.#offset = 0;
      } else {
        this.#offset += want;
        dropped += want;
      }
    }
    this.#size -= dropped;
    this.#compact();
    return dropped;
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#batches.length) {
      this.#batches = this.#batches.slice(this.#head);
      this.#head = 0;
    } else if (this.#head === this.#batches.length) {
      this.#batches.length = 0;
      this.#head = 0;
    }
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

const EMPTY: Sample[] = [];

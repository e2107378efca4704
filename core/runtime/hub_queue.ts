/**
 * The hub queue: a bounded buffer of samples between devices and the
 * gateway. Samples travel as the batches devices emitted; capacity counts
 * samples. When full, `overflow` decides: `block` makes `push` return a
 * promise (backpressure), `drop_oldest` / `drop_newest` drop and count.
 *
 * A batch may carry an {@link Ack}: with `block` it settles once every
 * sample of the batch has been taken and the taker called
 * {@link HubQueue.acknowledge} (the gateway does once the broker holds
 * them); with a drop policy it settles when the batch is appended, since the
 * policy may drop it later anyway.
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
  /**
   * Called once per batch when its first sample is taken, with the time from
   * that sample's timestamp to the push and the time it then waited in the
   * queue (milliseconds); `now` is the clock both are read from.
   */
  onWait?: (beforePush: number, inQueue: number) => void;
  now?: () => number;
}

/** Settles when a pushed batch is safe (see the module doc). */
export interface Ack {
  resolve(): void;
  reject(error: Error): void;
}

interface BlockedPush {
  batch: Sample[];
  resolve: () => void;
  ack: Ack | undefined;
}

/** An ack waiting for the samples up to `end` (counted since the start) to be taken and kept. */
interface PendingAck {
  end: number;
  ack: Ack;
}

/** A bounded FIFO of sample batches. */
export class HubQueue {
  readonly capacity: number;
  readonly overflow: Overflow;
  #onDrop: HubQueueOptions["onDrop"];
  #onWait: HubQueueOptions["onWait"];
  #now: () => number;
  #batches: Sample[][] = [];
  /** When each batch of `#batches` was appended (only with `onWait`). */
  #pushedAt: number[] = [];
  #head = 0; // index of the first batch still in use
  #offset = 0; // samples already taken from the first batch
  #size = 0;
  #blocked: BlockedPush[] = [];
  #waiters: Array<() => void> = [];
  #closed = false;
  /** Samples ever appended, and ever taken (or discarded): positions for acks. */
  #appended = 0;
  #taken = 0;
  #acks: PendingAck[] = [];

  constructor({ capacity, overflow, onDrop, onWait, now = Date.now }: HubQueueOptions) {
    this.capacity = capacity;
    this.overflow = overflow;
    this.#onDrop = onDrop;
    this.#onWait = onWait;
    this.#now = now;
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
  push(batch: Sample[], ack?: Ack): void | Promise<void> {
    if (batch.length === 0) {
      ack?.resolve();
      return;
    }
    if (this.#closed) {
      this.#onDrop?.(batch.length, "closed");
      ack?.reject(new Error("The hub queue is closed: the pipeline is stopping"));
      return;
    }
    if (this.overflow !== "block") ack?.resolve();
    if (this.#blocked.length === 0 && this.#size + batch.length <= this.capacity) {
      this.#append(batch, this.overflow === "block" ? ack : undefined);
      return;
    }
    switch (this.overflow) {
      case "block":
        return new Promise<void>((resolve) => {
          this.#blocked.push({ batch, resolve, ack });
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
    const onWait = this.#onWait;
    const now = onWait ? this.#now() : 0;
    while (out.length < max && this.#head < this.#batches.length) {
      const batch = this.#batches[this.#head]!;
      if (onWait && this.#offset === 0) {
        const pushed = this.#pushedAt[this.#head]!;
        onWait(pushed - batch[0]!.ts, now - pushed);
      }
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
    this.#taken += out.length;
    this.#compact();
    this.#admitBlocked();
    return out;
  }

  /** Whether a pushed batch waits for its ack (the taker should not linger). */
  get acksWaiting(): boolean {
    return this.#acks.length > 0;
  }

  /**
   * Settles the acks of every batch taken whole so far: call it once what
   * was taken is safe (the broker holds it).
   */
  acknowledge(): void {
    let n = 0;
    while (n < this.#acks.length && this.#acks[n]!.end <= this.#taken) {
      this.#acks[n++]!.ack.resolve();
    }
    if (n > 0) this.#acks.splice(0, n);
  }

  /** Rejects every waiting ack (what was taken or queued will not be kept). */
  failAcks(error: Error): void {
    for (const { ack } of this.#acks.splice(0)) ack.reject(error);
  }

  /**
   * Resolves when at least `min` samples wait, a waiting batch wants its
   * ack, the queue closes, or `signal` aborts (use it for timeouts). Never
   * rejects.
   */
  waitFor(min: number, signal?: AbortSignal): Promise<void> {
    // A batch waiting for its ack ends the wait too: its producer waits on the taker.
    const ready = () =>
      this.#size >= min || this.#closed || signal?.aborted === true ||
      (this.#acks.length > 0 && this.#size > 0);
    if (ready()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const check = () => {
        if (ready()) {
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
      this.#append(b.batch, b.ack);
      b.resolve();
    }
    this.#wake();
  }

  #append(batch: Sample[], ack?: Ack): void {
    this.#batches.push(batch);
    if (this.#onWait) this.#pushedAt.push(this.#now());
    this.#size += batch.length;
    this.#appended += batch.length;
    if (ack) this.#acks.push({ end: this.#appended, ack });
    this.#wake();
  }

  #admitBlocked(): void {
    while (this.#blocked.length > 0) {
      const next = this.#blocked[0]!;
      // A batch larger than the whole queue is admitted once the queue is empty.
      const fits = this.#size + next.batch.length <= this.capacity || this.#size === 0;
      if (!fits) break;
      this.#blocked.shift();
      this.#append(next.batch, next.ack);
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
    this.#taken += dropped;
    this.#compact();
    return dropped;
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#batches.length) {
      this.#batches = this.#batches.slice(this.#head);
      if (this.#onWait) this.#pushedAt = this.#pushedAt.slice(this.#head);
      this.#head = 0;
    } else if (this.#head === this.#batches.length) {
      this.#batches.length = 0;
      this.#pushedAt.length = 0;
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

/**
 * A fake clock and the helpers that let promise callbacks run. Public
 * through `core/testing.ts`.
 *
 * @module
 */
import type { Clock } from "./clock.ts";

interface Timer {
  due: number;
  seq: number;
  resolve: () => void;
}

/**
 * A clock that moves only when told. `sleep()` resolves when `advance()`
 * moves time past its due time, in due order.
 *
 * @example
 * ```ts
 * import { FakeClock } from "./testing.ts";
 * const clock = new FakeClock(0);
 * const done = clock.sleep(100);
 * await clock.advance(100); // `done` is now resolved
 * await done;
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  #timers: Timer[] = [];
  #seq = 0;

  /**
   * A clock stopped at `start` (milliseconds since the epoch; 2023-11-14 by
   * default) until the test advances it.
   */
  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer: Timer = { due: this.#now + Math.max(0, ms), seq: this.#seq++, resolve };
      const onAbort = () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        reject(signal?.reason);
      };
      timer.resolve = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#timers.push(timer);
      this.#timers.sort((a, b) => a.due - b.due || a.seq - b.seq);
    });
  }

  /** Timers waiting. */
  get pending(): number {
    return this.#timers.length;
  }

  /**
   * Moves time forward by `ms`, firing due timers in order and letting
   * promise callbacks run after each, so chains of sleeps progress.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flushMicrotasks(1);
    while (this.#timers.length > 0 && this.#timers[0]!.due <= target) {
      const timer = this.#timers.shift()!;
      this.#now = Math.max(this.#now, timer.due);
      timer.resolve();
      await settlePromises();
    }
    this.#now = target;
    await flushMicrotasks(1);
  }

  /** Sets the time without firing anything in between (then fires what is due). */
  async set(time: number): Promise<void> {
    await this.advance(Math.max(0, time - this.#now));
  }
}

/**
 * Lets chains of promise callbacks run without giving the event loop a
 * turn: fast, and enough for code that only awaits promises and fake sleeps.
 *
 * @example
 * ```ts
 * import { settlePromises } from "@telemetryhub/telemetryhub/testing";
 * let done = false;
 * Promise.resolve().then(() => Promise.resolve()).then(() => done = true);
 * await settlePromises(); // done is true
 * ```
 */
export async function settlePromises(rounds = 50): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

/**
 * Lets pending promise callbacks and timers run (a few event-loop turns).
 *
 * @example
 * ```ts
 * import { flushMicrotasks } from "@telemetryhub/telemetryhub/testing";
 * let fired = false;
 * setTimeout(() => fired = true, 0);
 * await flushMicrotasks(); // fired is true
 * ```
 */
export async function flushMicrotasks(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setTimeout(r, 0));
}

/**
 * Injected time. Everything that waits or reads the time goes through a
 * {@link Clock} so tests can drive windows, backoff and pacing with a fake.
 *
 * @module
 */

/** A source of time and of waiting. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds, or rejects with the signal's reason
   * when the signal aborts first.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The wall clock and real timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, ms));
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};

/**
 * Resolves when `signal` aborts (at once when it has), for a component that
 * runs until it is stopped.
 *
 * @example
 * ```ts
 * import { untilAborted } from "@telemetryhub/telemetryhub";
 * const stop = new AbortController();
 * const stopped = untilAborted(stop.signal);
 * stop.abort();
 * await stopped;
 * ```
 */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * Sleeps and resolves `false` instead of throwing when the signal aborts.
 *
 * @example
 * ```ts
 * import { sleepUnlessAborted } from "@telemetryhub/telemetryhub";
 * import { FakeClock } from "@telemetryhub/telemetryhub/testing";
 * const clock = new FakeClock(0);
 * const stop = new AbortController();
 * const slept = sleepUnlessAborted(clock, 1000, stop.signal);
 * stop.abort();
 * await slept; // false: stopped before the second was up
 * ```
 */
export async function sleepUnlessAborted(
  clock: Clock,
  ms: number,
  signal: AbortSignal,
): Promise<boolean> {
  try {
    await clock.sleep(ms, signal);
    return true;
  } catch (error) {
    if (signal.aborted) return false;
    throw error;
  }
}

/**
 * Waits for `work`, or only until `signal` aborts, whichever comes first.
 * Resolves `true` when `work` settled (rejecting if it rejected), `false`
 * when the signal aborted (at once if it already had); `work` goes on.
 *
 * @example
 * ```ts
 * import { settledOrAborted } from "./clock.ts";
 * const stop = new AbortController();
 * const finished = await settledOrAborted(Promise.resolve(), stop.signal); // true
 * ```
 */
export async function settledOrAborted(
  work: Promise<unknown>,
  signal: AbortSignal,
): Promise<boolean> {
  if (signal.aborted) return false;
  let listener: (() => void) | undefined;
  const aborted = new Promise<false>((resolve) => {
    listener = () => resolve(false);
    signal.addEventListener("abort", listener, { once: true });
  });
  try {
    return await Promise.race([work.then(() => true as const), aborted]);
  } finally {
    signal.removeEventListener("abort", listener!);
  }
}

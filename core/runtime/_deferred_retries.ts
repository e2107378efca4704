/**
 * Delayed retries for a broker that cannot hold them (it does not declare
 * the `delayedRetries` capability): the pool keeps such a delivery, still
 * in flight, until its delay has passed, and only then settles it as a
 * retry with delay 0, which the broker requeues at once.
 *
 * @module
 */
import { sleepUnlessAborted } from "../clock.ts";
import type { Clock } from "../clock.ts";
import type { Outcome } from "./_outcome.ts";

/** Holds retry outcomes until they are due, then hands them to `settle`. */
export class DeferredRetries {
  #clock: Clock;
  #settle: (outcomes: Outcome[]) => Promise<void>;
  /** Ends every wait at once (shutdown): what is held settles now. */
  #now = new AbortController();
  #waiting = new Set<Promise<void>>();

  constructor(clock: Clock, settle: (outcomes: Outcome[]) => Promise<void>) {
    this.#clock = clock;
    this.#settle = settle;
  }

  /** Retries held now. */
  get size(): number {
    return this.#waiting.size;
  }

  /**
   * Takes the retries with a delay out of `outcomes` and holds them; returns
   * the outcomes to settle now.
   */
  split(outcomes: Outcome[]): Outcome[] {
    const now: Outcome[] = [];
    for (const outcome of outcomes) {
      const s = outcome.settlement;
      if (s.outcome === "retry" && s.delay > 0) this.#hold(outcome, s.delay);
      else now.push(outcome);
    }
    return now;
  }

  /** Settles every held retry now, without waiting for its delay; for shutdown. */
  async flush(): Promise<void> {
    this.#now.abort();
    await Promise.all(this.#waiting);
  }

  #hold(outcome: Outcome, delay: number): void {
    const s = outcome.settlement;
    const waiting = (async () => {
      await sleepUnlessAborted(this.#clock, delay, this.#now.signal);
      await this.#settle([{ ...outcome, settlement: { ...s, delay: 0 } as typeof s }]);
    })().finally(() => this.#waiting.delete(waiting));
    this.#waiting.add(waiting);
  }
}

/**
 * The pool's hold while a handler's dependency (a database, a broker) is
 * down: workers stop reserving for the retry policy's backoff, longer each
 * time the dependency is still down, and resume once a task goes through.
 * Logged once per outage, and once when it ends.
 *
 * @module
 */
import { backoffDelay, type RetryPolicy } from "../backoff.ts";
import type { Clock } from "../clock.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Random } from "../random.ts";

/** One pool's hold; see the module. */
export class DependencyHold {
  #o: { pipeline: string; clock: Clock; random: Random; logger: Logger };
  #hold: { until: number; since: number; failures: number } | undefined;

  constructor(options: { pipeline: string; clock: Clock; random: Random; logger: Logger }) {
    this.#o = options;
  }

  /** Milliseconds workers should wait before reserving again; 0 when not held. */
  remaining(): number {
    return this.#hold ? Math.max(0, this.#hold.until - this.#o.clock.now()) : 0;
  }

  /** A handler found a dependency down: hold (again, for longer). */
  down(retry: RetryPolicy, error: unknown): void {
    const now = this.#o.clock.now();
    const failures = (this.#hold?.failures ?? 0) + 1;
    const delay = backoffDelay(retry, failures, this.#o.random);
    if (!this.#hold) {
      this.#o.logger.warn("A handler's dependency is unavailable; holding tasks until it is back", {
        pipeline: this.#o.pipeline,
        error: errorMessage(error),
      });
    }
    this.#hold = {
      until: Math.max(this.#hold?.until ?? 0, now + delay),
      since: this.#hold?.since ?? now,
      failures,
    };
  }

  /** A task went through again: the hold ends. */
  up(): void {
    const hold = this.#hold;
    if (!hold) return;
    this.#hold = undefined;
    this.#o.logger.info("Handlers' dependencies available again; taking tasks", {
      pipeline: this.#o.pipeline,
      held_ms: this.#o.clock.now() - hold.since,
    });
  }
}

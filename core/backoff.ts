/**
 * Retry policy: a pure function of policy, attempt and a random source.
 *
 * @module
 */
import type { Random } from "./random.ts";

/** How failed tasks are retried. */
export interface RetryPolicy {
  /** Total attempts including the first; at this count the task is dead-lettered. */
  max_attempts: number;
  /** Delay before the first retry, in milliseconds. */
  delay: number;
  /** Ceiling on any delay, in milliseconds. */
  max: number;
  /** Fraction of the delay randomized, 0..1 (0.2 = ±20%). */
  jitter: number;
  /** Growth per attempt (2 = doubling). */
  factor?: number;
}

/**
 * Delay before retry number `attempt` (1 = first retry): exponential growth
 * capped at `max`, then a symmetric jitter of ±`jitter`·delay, never below
 * zero and never above `max`.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 * const p = { max_attempts: 5, delay: 100, max: 10_000, jitter: 0 };
 * [1, 2, 3].map((n) => backoffDelay(p, n, Math.random)); // [100, 200, 400]
 * ```
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: Random): number {
  const factor = policy.factor ?? 2;
  const exponent = Math.max(0, attempt - 1);
  const base = Math.min(policy.max, policy.delay * Math.pow(factor, exponent));
  const spread = base * Math.min(1, Math.max(0, policy.jitter));
  const jittered = base - spread + 2 * spread * random();
  return Math.round(Math.min(policy.max, Math.max(0, jittered)));
}

/** Outcome of a failed attempt: retry after a delay, or dead-letter. */
export type FailureDecision =
  | { action: "retry"; delay: number }
  | { action: "dead_letter"; reason: "permanent" | "exhausted" };

/**
 * Decides what happens after attempt number `attempts` failed.
 * `attempts` counts the attempt that just failed.
 *
 * @example
 * ```ts
 * import { decideFailure } from "@telemetryhub/telemetryhub";
 * const policy = { max_attempts: 3, delay: 100, max: 10_000, jitter: 0 };
 * decideFailure(policy, 1, false, Math.random); // { action: "retry", delay: 100 }
 * decideFailure(policy, 3, false, Math.random); // { action: "dead_letter", reason: "exhausted" }
 * ```
 */
export function decideFailure(
  policy: RetryPolicy,
  attempts: number,
  permanent: boolean,
  random: Random,
): FailureDecision {
  if (permanent) return { action: "dead_letter", reason: "permanent" };
  if (attempts >= policy.max_attempts) return { action: "dead_letter", reason: "exhausted" };
  return { action: "retry", delay: backoffDelay(policy, attempts, random) };
}

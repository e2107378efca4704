/**
 * Live sample taps (`GET /api/v1/tap`): subscribers with a server-side
 * filter and a rate cap, fed at three kinds of stage of every pipeline:
 * as samples enter the hub (`input`, before any handler), after each
 * handler of a chain (`handler:<name>`, what it passed on), and as samples
 * are dead-lettered (`dead_letters`, with the reason). Costs one size check
 * per offer when nobody listens.
 *
 * @module
 */
import { globMatcher } from "../glob.ts";
import type { Sample } from "../sample.ts";

/** Where in a pipeline samples are tapped. */
export type TapStage = "input" | "dead_letters" | `handler:${string}`;

/** Which samples a subscriber wants; absent fields match everything. */
export interface TapFilter {
  pipeline?: string;
  /** Default `input`. */
  stage?: TapStage;
  /** A device name or glob (`boiler_*`). */
  device?: string;
  /** A metric name or glob. */
  metric?: string;
}

/**
 * Receives sampled samples, the count skipped since the last call and, at
 * `dead_letters`, why they were dead-lettered.
 */
export type TapListener = (samples: Sample[], skipped: number, reason?: string) => void;

interface Subscriber {
  pipeline: string | undefined;
  stage: TapStage;
  /** Undefined: every sample matches. */
  matches: ((s: Sample) => boolean) | undefined;
  ratePerSecond: number;
  listener: TapListener;
  tokens: number;
  refilledAt: number;
  skipped: number;
}

/** A predicate for the device and metric globs of `filter`; undefined when both are absent. */
function sampleMatcher(filter: TapFilter): ((s: Sample) => boolean) | undefined {
  const device = filter.device === undefined ? undefined : globMatcher(filter.device);
  const metric = filter.metric === undefined ? undefined : globMatcher(filter.metric);
  if (!device && !metric) return undefined;
  // Dead letters may hold items that are not samples: they match no glob.
  return (s) =>
    (!device || (typeof s.device === "string" && device(s.device))) &&
    (!metric || (typeof s.metric === "string" && metric(s.metric)));
}

/** The taps of one runtime. */
export class Tap {
  #subs = new Set<Subscriber>();
  #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Subscribers currently attached. */
  get size(): number {
    return this.#subs.size;
  }

  /**
   * Attaches a listener that gets at most `ratePerSecond` samples per second
   * (a token bucket holding one second's worth); returns the detach function.
   */
  subscribe(filter: TapFilter, ratePerSecond: number, listener: TapListener): () => void {
    const sub: Subscriber = {
      pipeline: filter.pipeline,
      stage: filter.stage ?? "input",
      matches: sampleMatcher(filter),
      ratePerSecond,
      listener,
      tokens: ratePerSecond,
      refilledAt: this.#now(),
      skipped: 0,
    };
    this.#subs.add(sub);
    return () => this.#subs.delete(sub);
  }

  /** Offers a batch passing `stage` of `pipeline` (at `dead_letters`, with why). */
  offer(
    pipeline: string,
    samples: readonly Sample[],
    stage: TapStage = "input",
    reason?: string,
  ): void {
    if (this.#subs.size === 0 || samples.length === 0) return;
    const now = this.#now();
    for (const sub of this.#subs) {
      if (sub.stage !== stage) continue;
      if (sub.pipeline !== undefined && sub.pipeline !== pipeline) continue;
      const matching = sub.matches ? samples.filter(sub.matches) : samples;
      if (matching.length === 0) continue;
      sub.tokens = Math.min(
        sub.ratePerSecond,
        sub.tokens + ((now - sub.refilledAt) / 1000) * sub.ratePerSecond,
      );
      sub.refilledAt = now;
      const take = Math.min(matching.length, Math.floor(sub.tokens));
      sub.skipped += matching.length - take;
      if (take === 0) continue;
      sub.tokens -= take;
      // Evenly spaced picks, so a burst is represented rather than its head.
      const step = matching.length / take;
      const picked: Sample[] = [];
      for (let i = 0; i < take; i++) picked.push(matching[Math.floor(i * step)]!);
      const skipped = sub.skipped;
      sub.skipped = 0;
      sub.listener(picked, skipped, reason);
    }
  }
}

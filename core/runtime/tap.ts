/**
 * Live sample taps (`GET /api/v1/tap`): subscribers with a server-side
 * filter and a rate cap, fed from the hub side of every pipeline. Costs one
 * size check per batch when nobody listens.
 *
 * @module
 */
import type { Sample } from "../sample.ts";

/** Which samples a subscriber wants; absent fields match everything. */
export interface TapFilter {
  pipeline?: string;
  device?: string;
  metric?: string;
}

/** Receives sampled samples and the count skipped since the last call. */
export type TapListener = (samples: Sample[], skipped: number) => void;

interface Subscriber {
  filter: TapFilter;
  ratePerSecond: number;
  listener: TapListener;
  tokens: number;
  refilledAt: number;
  skipped: number;
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
      filter,
      ratePerSecond,
      listener,
      tokens: ratePerSecond,
      refilledAt: this.#now(),
      skipped: 0,
    };
    this.#subs.add(sub);
    return () => this.#subs.delete(sub);
  }

  /** Offers a batch passing through `pipeline`. */
  offer(pipeline: string, samples: readonly Sample[]): void {
    if (this.#subs.size === 0) return;
    const now = this.#now();
    for (const sub of this.#subs) {
      const { filter } = sub;
      if (filter.pipeline !== undefined && filter.pipeline !== pipeline) continue;
      const matching = filter.device === undefined && filter.metric === undefined
        ? samples
        : samples.filter((s) =>
          (filter.device === undefined || s.device === filter.device) &&
          (filter.metric === undefined || s.metric === filter.metric)
        );
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
      sub.listener(picked, skipped);
    }
  }
}

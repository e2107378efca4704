/**
 * Per-series detectors of the sample-driven rules. Each judges one sample
 * of one device+metric series at a time and keeps only a small, fixed
 * amount of state (the z-score window is the largest: `window` numbers).
 *
 * @module
 */
import type { Rule, RuleOf } from "./_rules.ts";

/** Why a sample is anomalous under one rule. */
export interface Finding {
  /** `null`: open below. */
  expected_low: number | null;
  /** `null`: open above. */
  expected_high: number | null;
  score: number;
  detail: string;
}

/** The previous sample of the series, when there is one. */
export interface Previous {
  ts: number;
  value: number;
}

/** Judges samples of one series under one rule; `null` means normal (or still warming up). */
export interface Detector {
  judge(value: number, ts: number, previous: Previous | undefined): Finding | null;
}

/** Six significant digits for messages. */
function fmt(value: number): string {
  return String(Number(value.toPrecision(6)));
}

/** Makes the detector of a sample-driven rule. */
export function createDetector(rule: Exclude<Rule, { kind: "silent" }>): Detector {
  switch (rule.kind) {
    case "threshold":
      return thresholdDetector(rule);
    case "rate":
      return rateDetector(rule);
    case "zscore":
      return new ZScoreDetector(rule);
    case "ewma":
      return new EwmaDetector(rule);
    case "stuck":
      return new StuckDetector(rule);
  }
}

function thresholdDetector(rule: RuleOf<"threshold">): Detector {
  const low = rule.below ?? null, high = rule.above ?? null;
  return {
    judge(value) {
      if (high !== null && value > high) {
        return {
          expected_low: low,
          expected_high: high,
          score: value - high,
          detail: `Value ${fmt(value)} is above ${fmt(high)}`,
        };
      }
      if (low !== null && value < low) {
        return {
          expected_low: low,
          expected_high: high,
          score: low - value,
          detail: `Value ${fmt(value)} is below ${fmt(low)}`,
        };
      }
      return null;
    },
  };
}

function rateDetector(rule: RuleOf<"rate">): Detector {
  const limit = rule.max_per_second;
  return {
    judge(value, ts, previous) {
      if (!previous || ts <= previous.ts) return null;
      const rate = (value - previous.value) * 1000 / (ts - previous.ts);
      if (Math.abs(rate) <= limit) return null;
      return {
        expected_low: -limit,
        expected_high: limit,
        score: Math.abs(rate) / limit,
        detail: `Changed ${fmt(rate)} per second (limit ±${fmt(limit)})`,
      };
    },
  };
}

/**
 * Rolling z-score over the previous `window` samples. An anomalous value
 * enters the window clipped to the band edge, so one spike neither hides
 * the next nor keeps the window from following a real change of level.
 */
class ZScoreDetector implements Detector {
  #values: Float64Array;
  #next = 0;
  #count = 0;
  #seen = 0;
  /** Sums of values minus `#ref`, which keeps the sums small (no cancellation). */
  #ref = 0;
  #sum = 0;
  #sumSq = 0;
  #warmup: number;
  #threshold: number;
  #updates = 0;

  constructor(rule: RuleOf<"zscore">) {
    this.#values = new Float64Array(rule.window);
    this.#warmup = Math.max(2, rule.warmup ?? rule.window);
    this.#threshold = rule.threshold;
  }

  judge(value: number): Finding | null {
    if (this.#seen === 0) this.#ref = value;
    this.#seen++;
    let finding: Finding | null = null;
    let kept = value;
    if (this.#seen > this.#warmup && this.#count >= 2) {
      const n = this.#count;
      const meanOff = this.#sum / n;
      const variance = Math.max(0, (this.#sumSq - n * meanOff * meanOff) / (n - 1));
      const sd = Math.sqrt(variance);
      const mean = meanOff + this.#ref;
      const low = mean - this.#threshold * sd, high = mean + this.#threshold * sd;
      // A window of identical values has no spread to judge by (the stuck rule covers it).
      if (sd > 1e-12 * Math.max(1, Math.abs(mean)) && (value < low || value > high)) {
        const z = (value - mean) / sd;
        finding = {
          expected_low: low,
          expected_high: high,
          score: Math.abs(z),
          detail: `Value ${fmt(value)} is ${fmt(z)} standard deviations from the mean ${
            fmt(mean)
          } of the last ${n} samples`,
        };
        kept = Math.min(high, Math.max(low, value));
      }
    }
    this.#push(kept - this.#ref);
    return finding;
  }

  #push(x: number): void {
    const size = this.#values.length;
    if (this.#count === size) {
      const old = this.#values[this.#next]!;
      this.#sum -= old;
      this.#sumSq -= old * old;
    } else {
      this.#count++;
    }
    this.#values[this.#next] = x;
    this.#next = (this.#next + 1) % size;
    this.#sum += x;
    this.#sumSq += x * x;
    // Running sums drift with rounding: recompute them now and then.
    if (++this.#updates % (size * 16) === 0) {
      this.#sum = 0;
      this.#sumSq = 0;
      for (let i = 0; i < this.#count; i++) {
        const v = this.#values[i]!;
        this.#sum += v;
        this.#sumSq += v * v;
      }
    }
  }
}

/**
 * EWMA control chart. The first `warmup` samples set a baseline mean and
 * variance; from then the smoothed value z = α·x + (1−α)·z is judged
 * against mean ± k·σ·√(α/(2−α)). While in control the baseline keeps
 * learning slowly (weight 1/`baseline_window`); while out of control it
 * is frozen, so a drift cannot drag the baseline along.
 */
class EwmaDetector implements Detector {
  #rule: RuleOf<"ewma">;
  #factor: number;
  #n = 0;
  #mean = 0;
  #var = 0;
  #z = 0;
  #outFor = 0;

  constructor(rule: RuleOf<"ewma">) {
    this.#rule = rule;
    this.#factor = rule.k * Math.sqrt(rule.alpha / (2 - rule.alpha));
  }

  judge(value: number): Finding | null {
    const { alpha, warmup, baseline_window: window, relearn_after: relearn } = this.#rule;
    if (this.#n < warmup) {
      this.#learn(value, this.#n + 1);
      this.#z = this.#mean;
      return null;
    }
    this.#z = alpha * value + (1 - alpha) * this.#z;
    const sd = Math.sqrt(this.#var);
    const half = this.#factor * sd;
    const low = this.#mean - half, high = this.#mean + half;
    if (sd > 1e-12 * Math.max(1, Math.abs(this.#mean)) && (this.#z < low || this.#z > high)) {
      const score = Math.abs(this.#z - this.#mean) / (half / this.#rule.k);
      const finding: Finding = {
        expected_low: low,
        expected_high: high,
        score,
        detail: `Smoothed value ${fmt(this.#z)} is outside the control limits ${fmt(low)}..${
          fmt(high)
        } (baseline mean ${fmt(this.#mean)}, sigma ${fmt(sd)})`,
      };
      if (relearn > 0 && ++this.#outFor >= relearn) this.#restart();
      return finding;
    }
    this.#outFor = 0;
    this.#learn(value, Math.min(this.#n + 1, window));
    return null;
  }

  /** Welford's update with the weight capped at 1/`n`. */
  #learn(value: number, n: number): void {
    this.#n = Math.max(this.#n, n);
    const delta = value - this.#mean;
    this.#mean += delta / n;
    this.#var = n === 1 ? 0 : this.#var + (delta * (value - this.#mean) - this.#var) / n;
  }

  #restart(): void {
    this.#n = 0;
    this.#mean = 0;
    this.#var = 0;
    this.#outFor = 0;
  }
}

class StuckDetector implements Detector {
  #rule: RuleOf<"stuck">;
  #value = NaN;
  #since = 0;
  #count = 0;

  constructor(rule: RuleOf<"stuck">) {
    this.#rule = rule;
  }

  judge(value: number, ts: number): Finding | null {
    const { samples, duration, tolerance } = this.#rule;
    if (this.#count > 0 && Math.abs(value - this.#value) <= tolerance) {
      this.#count++;
    } else {
      this.#value = value;
      this.#since = ts;
      this.#count = 1;
    }
    const elapsed = ts - this.#since;
    const stuck = (samples !== undefined && this.#count >= samples) ||
      (duration !== undefined && elapsed >= duration);
    if (!stuck) return null;
    return {
      expected_low: this.#value - tolerance,
      expected_high: this.#value + tolerance,
      score: this.#count,
      detail: `Value ${fmt(this.#value)} unchanged for ${this.#count} samples (${
        fmt(elapsed / 1000)
      }s)`,
    };
  }
}

/**
 * One simulated metric of one device: the signal model and its hot loop.
 * Pure: the value of sample `i` depends only on the parameters, the seed and
 * `i` (and on which earlier samples were generated), never on the clock, so
 * batching and timer lateness do not change the series.
 *
 * @module
 */
import { type Random, type Sample, seededRandom, seedFrom } from "../../core/mod.ts";

const TWO_PI = 2 * Math.PI;
const MS_PER_HOUR = 3_600_000;

/** Signal parameters of one metric, in the metric's canonical unit (°C, kPa, %RH). */
export interface SignalParams {
  base: number;
  amplitude: number;
  /** Milliseconds. */
  period: number;
  noise: number;
  /** Per hour. */
  drift: number;
  spike_probability: number;
  spike_magnitude: number;
  stuck_probability: number;
  /** Milliseconds. */
  stuck_duration: number;
  min: number;
  max: number;
}

/** Everything a {@link SeriesGenerator} needs. */
export interface SeriesOptions {
  device: string;
  metric: string;
  /** Unit written on every sample. */
  unit: string;
  /** Output = canonical value × scale + offset (unit conversion). */
  scale: number;
  offset: number;
  params: SignalParams;
  /** Samples per second. */
  rate: number;
  /** Seed of the device; each metric derives its own stream from it. */
  seed: number;
  /** Sequence number of sample 0. */
  startSeq: number;
}

/**
 * Number of samples before the next event of probability `p` per sample
 * (geometric distribution): one draw per event instead of one per sample.
 */
function gap(rng: Random, p: number): number {
  if (p <= 0) return Infinity;
  if (p >= 1) return 0;
  return Math.floor(Math.log(1 - rng()) / Math.log(1 - p));
}

/** Generates the samples of one metric. */
export class SeriesGenerator {
  readonly device: string;
  readonly metric: string;
  readonly unit: string;
  // Precomputed parameters, read once per batch into locals.
  readonly #base: number;
  readonly #amplitude: number;
  readonly #omega: number;
  readonly #phase: number;
  readonly #noise: number;
  readonly #driftPerMs: number;
  readonly #spikeP: number;
  readonly #spikeMagnitude: number;
  readonly #stuckP: number;
  readonly #stuckSamples: number;
  readonly #min: number;
  readonly #max: number;
  readonly #scale: number;
  readonly #offset: number;
  readonly #step: number;
  readonly #startSeq: number;
  readonly #rng: Random;
  // State carried between batches.
  #spare = NaN;
  #untilSpike: number;
  #untilStuck: number;
  #stuckLeft = 0;
  #last = NaN;

  constructor(options: SeriesOptions) {
    const { params: p } = options;
    this.device = options.device;
    this.metric = options.metric;
    this.unit = options.unit;
    this.#rng = seededRandom(seedFrom(options.metric, options.seed));
    this.#base = p.base;
    this.#amplitude = p.amplitude;
    this.#omega = TWO_PI / p.period;
    this.#phase = TWO_PI * this.#rng();
    this.#noise = p.noise;
    this.#driftPerMs = p.drift / MS_PER_HOUR;
    this.#spikeP = p.spike_probability;
    this.#spikeMagnitude = p.spike_magnitude;
    this.#stuckP = p.stuck_probability;
    this.#stuckSamples = Math.max(1, Math.round((p.stuck_duration * options.rate) / 1000));
    this.#min = p.min;
    this.#max = p.max;
    this.#scale = options.scale;
    this.#offset = options.offset;
    this.#step = 1000 / options.rate;
    this.#startSeq = options.startSeq;
    this.#untilSpike = gap(this.#rng, this.#spikeP);
    this.#untilStuck = gap(this.#rng, this.#stuckP);
  }

  /**
   * Appends samples `first … first + count - 1` to `out`; sample `i` has
   * `ts = t0 + i × (1000 / rate)` and `seq = startSeq + i`.
   */
  generate(out: Sample[], t0: number, first: number, count: number): void {
    const device = this.device, metric = this.metric, unit = this.unit;
    const base = this.#base, amplitude = this.#amplitude, omega = this.#omega;
    const phase = this.#phase, noise = this.#noise, driftPerMs = this.#driftPerMs;
    const min = this.#min, max = this.#max, scale = this.#scale, offset = this.#offset;
    const step = this.#step, seq0 = this.#startSeq, rng = this.#rng;
    let spare = this.#spare;
    let untilSpike = this.#untilSpike;
    let untilStuck = this.#untilStuck;
    let stuckLeft = this.#stuckLeft;
    let last = this.#last;
    const end = first + count;
    for (let i = first; i < end; i++) {
      const t = i * step;
      let value: number;
      if (stuckLeft > 0) {
        stuckLeft--;
        value = last;
      } else {
        value = base + amplitude * Math.sin(omega * t + phase) + driftPerMs * t;
        if (noise > 0) {
          // Normal variates come in pairs; keep the second for the next sample.
          if (spare === spare) {
            value += noise * spare;
            spare = NaN;
          } else {
            // Marsaglia's polar method: no trigonometry, ~1.27 pairs of draws.
            let u: number, v: number, s: number;
            do {
              u = 2 * rng() - 1;
              v = 2 * rng() - 1;
              s = u * u + v * v;
            } while (s >= 1 || s === 0);
            const f = Math.sqrt((-2 * Math.log(s)) / s);
            value += noise * u * f;
            spare = v * f;
          }
        }
        if (untilSpike === 0) {
          value += rng() < 0.5 ? -this.#spikeMagnitude : this.#spikeMagnitude;
          untilSpike = gap(rng, this.#spikeP);
        } else {
          untilSpike--;
        }
        if (value < min) value = min;
        else if (value > max) value = max;
        value = value * scale + offset;
        if (untilStuck === 0) {
          // This sample is the last good one; the next ones repeat it.
          stuckLeft = this.#stuckSamples;
          untilStuck = gap(rng, this.#stuckP);
        } else {
          untilStuck--;
        }
        last = value;
      }
      out.push({ device, metric, value, unit, ts: t0 + t, seq: seq0 + i });
    }
    this.#spare = spare;
    this.#untilSpike = untilSpike;
    this.#untilStuck = untilStuck;
    this.#stuckLeft = stuckLeft;
    this.#last = last;
  }
}

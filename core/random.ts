/**
 * Seeded randomness, so simulated signals and jitter are reproducible.
 *
 * @module
 */

/** A function returning uniformly distributed numbers in [0, 1). */
export type Random = () => number;

/**
 * mulberry32: a small, fast 32-bit generator; plenty for signals and jitter
 * (not for secrets).
 *
 * @example
 * ```ts
 * import { seededRandom } from "./random.ts";
 * const rng = seededRandom(42);
 * const x = rng(); // same sequence for the same seed
 * ```
 */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Derives a stable 32-bit seed from a string (FNV-1a), e.g. a device name.
 *
 * @example
 * ```ts
 * import { seededRandom, seedFrom } from "@telemetryhub/telemetryhub";
 * const rng = seededRandom(seedFrom("boiler")); // the same numbers on every run for "boiler"
 * ```
 */
export function seedFrom(text: string, base = 0): number {
  let h = (0x811c9dc5 ^ base) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A standard normal variate (Box-Muller) from a uniform source.
 *
 * @example
 * ```ts
 * import { gaussian, seededRandom } from "@telemetryhub/telemetryhub";
 * const rng = seededRandom(7);
 * const noise = 0.5 * gaussian(rng); // mean 0, standard deviation 0.5
 * ```
 */
export function gaussian(rng: Random): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

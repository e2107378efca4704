/**
 * Readiness probes and the rate window behind `Runtime.rates()`.
 *
 * @module
 */
import { errorMessage } from "../errors.ts";

/** One line of a readiness report. */
export interface ReadinessCheck {
  name: string;
  ready: boolean;
  reason?: string;
}

/** Samples and tasks per second of one pipeline. */
export interface PipelineRates {
  samples_read: number;
  samples_processed: number;
  tasks: number;
}

const RATE_WINDOW_MS = 10_000;
const round2 = (n: number) => Math.round(n * 100) / 100;

/** Runs a health check; not ready when it throws or does not answer within `timeoutMs`. */
export async function probe(
  name: string,
  fn: () => Promise<void>,
  timeoutMs: number,
): Promise<ReadinessCheck> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`No answer within ${timeoutMs}ms`)),
          timeoutMs,
        );
      }),
    ]);
    return { name, ready: true };
  } catch (error) {
    return { name, ready: false, reason: errorMessage(error) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Rates over the last few seconds, from counters read at most once a second
 * per key (a pipeline, a device): each counter's increase per second since
 * the oldest reading still in the window; 0 until there are two readings.
 */
export class RateWindow {
  #history = new Map<string, Array<{ at: number; counts: readonly number[] }>>();

  /** Records `counts` of `key` at `now` and returns their rates over the window. */
  rates(key: string, counts: readonly number[], now: number): number[] {
    let history = this.#history.get(key);
    if (!history) this.#history.set(key, history = []);
    if (history.length === 0 || now - history.at(-1)!.at >= 1000) history.push({ at: now, counts });
    while (history.length > 2 && now - history[1]!.at >= RATE_WINDOW_MS) history.shift();
    const base = history[0]!;
    const seconds = (now - base.at) / 1000;
    return counts.map((n, i) => seconds <= 0 ? 0 : round2((n - base.counts[i]!) / seconds));
  }

  /** Forgets keys not in `keep` (devices gone after a reload). */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.#history.keys()) if (!keep.has(key)) this.#history.delete(key);
  }
}

/**
 * Readiness probes and the rate window behind `Runtime.rates()`.
 *
 * @module
 */
import { errorMessage } from "../errors.ts";
import type { PipelineTotals } from "./metrics.ts";

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

/** Rates over the last few seconds, from totals sampled at most once a second. */
export class RateWindow {
  #history = new Map<
    string,
    Array<{ at: number; read: number; processed: number; tasks: number }>
  >();

  /** Records a pipeline's totals at `now` and returns its rates over the window. */
  rates(name: string, t: PipelineTotals, now: number): PipelineRates {
    const current = {
      at: now,
      read: t.samples_read,
      processed: t.samples_processed,
      tasks: t.tasks_completed,
    };
    let history = this.#history.get(name);
    if (!history) this.#history.set(name, history = []);
    if (history.length === 0 || now - history.at(-1)!.at >= 1000) history.push(current);
    while (history.length > 2 && now - history[1]!.at >= RATE_WINDOW_MS) history.shift();
    const base = history[0]!;
    const seconds = (now - base.at) / 1000;
    return seconds <= 0 ? { samples_read: 0, samples_processed: 0, tasks: 0 } : {
      samples_read: round2((current.read - base.read) / seconds),
      samples_processed: round2((current.processed - base.processed) / seconds),
      tasks: round2((current.tasks - base.tasks) / seconds),
    };
  }
}

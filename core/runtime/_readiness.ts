/**
 * Readiness probes and the rate window behind `Runtime.rates()`.
 *
 * @module
 */
import { errorMessage } from "../errors.ts";
import type { BrokerDepth, BrokerInstance, HandlerInstance } from "../plugin.ts";
import type { PipelineRuntime } from "./_assembly.ts";
import type { DeviceStatus } from "./devices.ts";
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

/** A broker's queue depths, as the console's overview shows them. */
export interface BrokerReport {
  name: string;
  /** Pipelines whose tasks it holds. */
  pipelines: string[];
  shared: boolean;
  durable: boolean;
  /** `null` when the broker did not answer (see `error`). */
  depth: BrokerDepth | null;
  error?: string;
}

/**
 * The readiness of a process: each broker and handler health check (within
 * `timeoutMs`), each pipeline (ready while the runtime runs) and the checks
 * of its thread isolates.
 */
export async function readinessChecks(input: {
  brokers: ReadonlyMap<string, BrokerInstance>;
  handlers: ReadonlyMap<string, HandlerInstance>;
  pipelines: Iterable<string>;
  state: string;
  threads: Promise<ReadinessCheck[]> | undefined;
}, timeoutMs: number): Promise<ReadinessCheck[]> {
  const checks: Promise<ReadinessCheck>[] = [];
  for (const [name, b] of input.brokers) {
    checks.push(probe(`broker:${name}`, () => b.health(), timeoutMs));
  }
  for (const [name, h] of input.handlers) {
    if (h.health) checks.push(probe(`handler:${name}`, () => h.health!(), timeoutMs));
  }
  for (const name of input.pipelines) {
    checks.push(Promise.resolve(
      input.state === "running"
        ? { name: `pipeline:${name}`, ready: true }
        : { name: `pipeline:${name}`, ready: false, reason: `Runtime is ${input.state}` },
    ));
  }
  return [...await Promise.all(checks), ...await input.threads ?? []];
}

/** Each broker's queue depths (within `timeoutMs`) with the pipelines it serves. */
export async function brokerReports(
  brokers: ReadonlyMap<string, BrokerInstance>,
  pipelines: Iterable<PipelineRuntime>,
  timeoutMs: number,
): Promise<BrokerReport[]> {
  const all = [...pipelines];
  return await Promise.all([...brokers].map(async ([name, broker]) => {
    let depth: BrokerDepth | null = null;
    const check = await probe(name, async () => {
      depth = await broker.depth();
    }, timeoutMs);
    return {
      name,
      pipelines: all.filter((p) => p.brokerName === name).map((p) => p.name),
      shared: broker.shared,
      durable: broker.durable === true,
      depth,
      ...(check.reason === undefined ? {} : { error: check.reason }),
    };
  }));
}

/** Samples and tasks per second of each pipeline, from its totals, over `window`. */
export function pipelineRates(
  window: RateWindow,
  pipelines: Iterable<string>,
  totalsOf: (pipeline: string) => PipelineTotals,
  now: number,
): Record<string, PipelineRates> {
  const out: Record<string, PipelineRates> = {};
  for (const name of pipelines) {
    const t = totalsOf(name);
    const [samples_read = 0, samples_processed = 0, tasks = 0] = window.rates(
      name,
      [t.samples_read, t.samples_processed, t.tasks_completed],
      now,
    );
    out[name] = { samples_read, samples_processed, tasks };
  }
  return out;
}

/** Samples per second of each device over `window`; devices gone are forgotten. */
export function deviceRates(
  window: RateWindow,
  devices: readonly DeviceStatus[],
  now: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of devices) out[d.name] = window.rates(d.name, [d.samples], now)[0]!;
  window.retain(new Set(Object.keys(out)));
  return out;
}

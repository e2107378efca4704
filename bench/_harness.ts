/**
 * Benchmark plumbing: latency histograms, result files and the summary
 * table. Scenarios live in `scenarios/`, one module each.
 *
 * @module
 */
import { cpus } from "node:os";

/** What every scenario reports. */
export interface BenchResult {
  scenario: string;
  description: string;
  samples_per_second: number;
  /** Sample timestamp to handler completion. */
  latency_ms: { p50: number; p99: number; max: number };
  /** Offered load when the scenario paces its input; `null` for as-fast-as-possible. */
  offered_per_second: number | null;
  duration_s: number;
  samples: number;
  cores: number;
  cpu_model: string;
  /**
   * Single-core speed of this machine: parse+stringify round trips per
   * second of one fixed 100-sample JSON body, measured before the first
   * scenario. Compare it before comparing results of two machines.
   */
  reference_ops_per_second: number;
  /** One-minute load average before the first scenario (others' work on the machine). */
  load_before: number;
  deno: string;
  date: string;
  extra?: Record<string, unknown>;
}

/**
 * A log-linear latency histogram in milliseconds: 1% relative precision
 * from 1 µs to ~1 h, constant memory, O(1) record.
 */
export class LatencyHistogram {
  static readonly #SUB = 100; // buckets per power of ten
  #counts = new Float64Array(LatencyHistogram.#SUB * 10);
  #total = 0;
  #max = 0;

  record(ms: number, count = 1): void {
    const v = Math.max(ms, 0.001);
    const idx = Math.min(
      this.#counts.length - 1,
      Math.max(0, Math.floor((Math.log10(v) + 3) * LatencyHistogram.#SUB)),
    );
    this.#counts[idx]! += count;
    this.#total += count;
    if (ms > this.#max) this.#max = ms;
  }

  get count(): number {
    return this.#total;
  }

  get max(): number {
    return this.#max;
  }

  percentile(p: number): number {
    if (this.#total === 0) return 0;
    const rank = (p / 100) * this.#total;
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) {
        // Upper edge of the bucket, capped by the true maximum.
        return Math.min(
          this.#max,
          Math.pow(10, (i + 1) / LatencyHistogram.#SUB - 3),
        );
      }
    }
    return this.#max;
  }

  /** p50, p99 and max, as results report them. */
  summary(): { p50: number; p99: number; max: number } {
    return { p50: this.percentile(50), p99: this.percentile(99), max: this.#max };
  }

  reset(): void {
    this.#counts.fill(0);
    this.#total = 0;
    this.#max = 0;
  }
}

let reference = { reference_ops_per_second: 0, load_before: 0 };

/** The fixed workload of {@link calibrate}: one 100-sample ingest body. */
function referenceBody(): string {
  return JSON.stringify(
    Array.from({ length: 100 }, (_, i) => ({
      device: `dev-${i % 8}`,
      metric: "temperature",
      value: 20 + (i % 17) / 10,
      ts: 1_700_000_000_000 + i,
    })),
  );
}

/**
 * Measures the machine once, before any scenario loads it: single-core
 * speed on a fixed JSON workload (best of five 200 ms rounds) and the load
 * average. {@link machine} stamps both on every result.
 */
export function calibrate(): typeof reference {
  const body = referenceBody();
  let best = 0;
  for (let round = 0; round < 5; round++) {
    let ops = 0;
    const start = performance.now();
    let elapsed = 0;
    while ((elapsed = performance.now() - start) < 200) {
      for (let i = 0; i < 50; i++) JSON.stringify(JSON.parse(body));
      ops += 50;
    }
    best = Math.max(best, ops / (elapsed / 1000));
  }
  reference = {
    reference_ops_per_second: Math.round(best),
    load_before: Number((Deno.loadavg()[0] ?? 0).toFixed(2)),
  };
  return reference;
}

/** Polls `condition` every 2 ms until it holds; throws naming `what` after `ms`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  ms: number,
): Promise<void> {
  const end = Date.now() + ms;
  while (!await condition()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Machine facts stamped on every result. */
export function machine(): Pick<
  BenchResult,
  "cores" | "cpu_model" | "reference_ops_per_second" | "load_before" | "deno" | "date"
> {
  const list = cpus();
  return {
    cores: navigator.hardwareConcurrency ?? list.length,
    cpu_model: list[0]?.model ?? "unknown",
    ...reference,
    deno: Deno.version.deno,
    date: new Date().toISOString(),
  };
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** Writes `bench/results/<scenario>.json`. */
export async function writeResult(
  dir: string,
  result: BenchResult,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/${result.scenario}.json`,
    JSON.stringify(result, null, 2) + "\n",
  );
}

/** Rounds the figures of a result for display and storage. */
export function tidy(result: BenchResult): BenchResult {
  return {
    ...result,
    samples_per_second: Math.round(result.samples_per_second),
    latency_ms: {
      p50: round(result.latency_ms.p50, 3),
      p99: round(result.latency_ms.p99, 3),
      max: round(result.latency_ms.max, 3),
    },
    duration_s: round(result.duration_s),
  };
}

/** One Markdown table of results. */
export function markdownTable(results: readonly BenchResult[]): string {
  const fmt = (n: number) => n.toLocaleString("en-US");
  const lines = [
    "| scenario | samples/s | offered/s | p50 ms | p99 ms | max ms | cores | reference ops/s | date |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ...results.map((r) =>
      `| ${r.scenario} | ${fmt(r.samples_per_second)} | ${
        r.offered_per_second === null ? "max" : fmt(r.offered_per_second)
      } | ${r.latency_ms.p50} | ${r.latency_ms.p99} | ${r.latency_ms.max} | ${r.cores} | ${
        r.reference_ops_per_second ? fmt(r.reference_ops_per_second) : "?"
      } | ${r.date.slice(0, 10)} |`
    ),
  ];
  return lines.join("\n") + "\n";
}

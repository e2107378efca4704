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

/** Machine facts stamped on every result. */
export function machine(): Pick<
  BenchResult,
  "cores" | "cpu_model" | "deno" | "date"
> {
  const list = cpus();
  return {
    cores: navigator.hardwareConcurrency ?? list.length,
    cpu_model: list[0]?.model ?? "unknown",
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
    "| scenario | samples/s | offered/s | p50 ms | p99 ms | max ms | cores | date |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
    ...results.map((r) =>
      `| ${r.scenario} | ${fmt(r.samples_per_second)} | ${
        r.offered_per_second === null ? "max" : fmt(r.offered_per_second)
      } | ${r.latency_ms.p50} | ${r.latency_ms.p99} | ${r.latency_ms.max} | ${r.cores} | ${
        r.date.slice(0, 10)
      } |`
    ),
  ];
  return lines.join("\n") + "\n";
}

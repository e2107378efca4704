/**
 * Where the time goes in a whole-chain scenario: the runtime's own
 * histograms (`telemetry_stage_seconds`, `telemetry_task_duration_seconds`,
 * `telemetry_sample_latency_seconds`, see docs/metrics.md) scraped before and
 * after the measuring window, and the CPU time of each process taken from
 * `/proc/<pid>/stat`.
 *
 * @module
 */

/** Cumulative buckets (upper bound in seconds → count), sum and count of one histogram series. */
export interface HistogramSnapshot {
  buckets: Map<number, number>;
  sum: number;
  count: number;
}

/** Histogram series of one scrape, by `name{label="value"}` of the labels named. */
export type Scrape = Map<string, HistogramSnapshot>;

const LINE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/**
 * The histograms and counters of a Prometheus text exposition (a counter as
 * a histogram without buckets whose `count` and `sum` are its value),
 * summed over the `pipeline` label. (npm parse-prometheus-text-format drops
 * the labels, sum and count of prom-client's histograms, whose `le` label
 * comes first.)
 */
export function parseScrape(text: string): Scrape {
  const out: Scrape = new Map();
  const get = (key: string) => {
    let h = out.get(key);
    if (!h) out.set(key, h = { buckets: new Map(), sum: 0, count: 0 });
    return h;
  };
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, name, labelText = "", valueText] = m;
    const value = Number(valueText);
    let le: number | undefined;
    const labels: string[] = [];
    for (const [, k, v] of labelText.matchAll(LABEL)) {
      if (k === "le") le = v === "+Inf" ? Infinity : Number(v);
      else if (k !== "pipeline") labels.push(`${k}="${v}"`);
    }
    const key = (base: string) => labels.length ? `${base}{${labels.join(",")}}` : base;
    if (name!.endsWith("_bucket") && le !== undefined) {
      const h = get(key(name!.slice(0, -7)));
      h.buckets.set(le, (h.buckets.get(le) ?? 0) + value);
    } else if (name!.endsWith("_sum")) get(key(name!.slice(0, -4))).sum += value;
    else if (name!.endsWith("_count")) get(key(name!.slice(0, -6))).count += value;
    else if (name!.endsWith("_total")) {
      const h = get(key(name!));
      h.sum += value;
      h.count += value;
    }
  }
  return out;
}

/** Reads `url` (a `/metrics` route) as a {@link Scrape}. */
export async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return parseScrape(await res.text());
}

/** One hop: its mean, estimated percentiles and count over the window. */
export interface Hop {
  /** Observations (samples for `latency`, batches or tasks otherwise). */
  count: number;
  mean_ms: number;
  p50_ms: number;
  p99_ms: number;
  /** Time of the hop per sample passed through, in microseconds (handlers). */
  us_per_sample?: number;
}

/** Linear interpolation inside the bucket holding rank `q` of the delta histogram. */
function quantile(buckets: [number, number][], count: number, q: number): number {
  const rank = q * count;
  let prevBound = 0, prevCount = 0;
  for (const [bound, n] of buckets) {
    if (n >= rank) {
      if (!Number.isFinite(bound)) return prevBound;
      const inside = n - prevCount;
      return prevBound + (inside > 0 ? (bound - prevBound) * (rank - prevCount) / inside : 0);
    }
    prevBound = bound;
    prevCount = n;
  }
  return prevBound;
}

/** The change of one histogram between two scrapes, as a {@link Hop} in milliseconds. */
export function hopOf(
  before: HistogramSnapshot | undefined,
  after: HistogramSnapshot | undefined,
  samples?: number,
): Hop | undefined {
  if (!after) return undefined;
  const count = after.count - (before?.count ?? 0);
  if (count <= 0) return undefined;
  const sum = after.sum - (before?.sum ?? 0);
  const buckets = [...after.buckets].sort((a, b) => a[0] - b[0])
    .map(([le, n]): [number, number] => [le, n - (before?.buckets.get(le) ?? 0)]);
  const ms = (s: number) => Number((s * 1000).toFixed(3));
  return {
    count,
    mean_ms: ms(sum / count),
    p50_ms: ms(quantile(buckets, count, 0.5)),
    p99_ms: ms(quantile(buckets, count, 0.99)),
    ...(samples ? { us_per_sample: Number((sum * 1e6 / samples).toFixed(2)) } : {}),
  };
}

/** The stages and handlers of {@link breakdown}, in the order a sample meets them. */
const STAGES = ["device", "hub_queue", "enqueue", "broker"];

/**
 * The per-hop breakdown between two pairs of scrapes: hub stages from the
 * hub's, broker wait, each handler and the end-to-end latency from the
 * processor's (one process may be both). `samples` processed in the window
 * gives handlers their time per sample.
 */
export function breakdown(
  hub: [Scrape, Scrape],
  processor: [Scrape, Scrape],
  handlers: readonly string[],
  samples: number,
): Record<string, Hop | undefined> {
  const out: Record<string, Hop | undefined> = {};
  for (const stage of STAGES) {
    const key = `telemetry_stage_seconds{stage="${stage}"}`;
    const [before, after] = stage === "broker" ? processor : hub;
    out[stage] = hopOf(before.get(key), after.get(key));
  }
  for (const h of handlers) {
    const key = `telemetry_task_duration_seconds{handler="${h}"}`;
    out[`handler:${h}`] = hopOf(processor[0].get(key), processor[1].get(key), samples);
  }
  const latency = "telemetry_sample_latency_seconds";
  out.end_to_end = hopOf(processor[0].get(latency), processor[1].get(latency));
  return out;
}

/** Samples that completed every handler, between two scrapes of a processor. */
export function processedBetween(before: Scrape, after: Scrape): number {
  const key = "telemetry_samples_processed_total";
  return (after.get(key)?.count ?? 0) - (before.get(key)?.count ?? 0);
}

/** Output of a short command, or "" when it fails. */
export async function output(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "";
  }
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/**
 * CPU seconds (user + system) each of `pids` has used so far, from
 * `/proc/<pid>/stat` (read through `cat`: Deno wants --allow-all to read
 * /proc itself); `NaN` for a process that is gone.
 */
export async function cpuSeconds(pids: readonly number[]): Promise<number[]> {
  if (pids.length === 0) return [];
  const text = await output("sh", [
    "-c",
    pids.map((p) => `cat /proc/${p}/stat 2>/dev/null || echo ${p} gone`).join(";"),
  ]);
  const byPid = new Map<number, number>();
  for (const line of text.split("\n")) {
    // Fields after the command name (which may hold spaces) in parentheses.
    const pid = Number(line.slice(0, line.indexOf(" ")));
    const rest = line.slice(line.lastIndexOf(")") + 2).split(" ");
    if (rest.length < 13) continue;
    byPid.set(pid, (Number(rest[11]) + Number(rest[12])) / TICKS_PER_SECOND);
  }
  return pids.map((p) => byPid.get(p) ?? NaN);
}

/** The one-minute load average now. */
export async function loadAverage(): Promise<number> {
  return Number((await output("cat", ["/proc/loadavg"])).split(" ")[0]);
}

/** CPU use of a process over a window: cores busy and microseconds per sample processed. */
export function cpuShare(
  cpuSeconds: number,
  wallSeconds: number,
  samples: number,
): { cores: number; us_per_sample: number } {
  return {
    cores: Number((cpuSeconds / wallSeconds).toFixed(2)),
    us_per_sample: Number((cpuSeconds * 1e6 / Math.max(1, samples)).toFixed(2)),
  };
}

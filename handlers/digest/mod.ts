/**
 * The `digest` handler: logs a periodic one-line summary of the samples it
 * sees (counts, per-metric min/mean/max, devices, rate). Samples pass on
 * unchanged. Memory is bounded: one accumulator per metric name, capped.
 *
 * @module
 */
import {
  defineHandler,
  duration,
  errorMessage,
  type Sample,
  sleepUnlessAborted,
  z,
} from "../../core/mod.ts";

/** Per-metric statistics of the current window. */
class Stats {
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
}

/** One metric's line in the digest. */
export interface MetricDigest {
  count: number;
  min: number;
  mean: number;
  max: number;
}

const configSchema = z.strictObject({
  interval: duration({ timer: true }).pipe(z.number().min(1)).prefault("10s").describe(
    "How often the digest is logged",
  ),
  max_metrics: z.int().positive().default(1000).describe(
    "Most metric names given their own statistics per digest; samples of further metrics " +
      "are counted as untracked_samples",
  ),
  max_devices: z.int().positive().default(1000).describe(
    "Most device names counted per digest; beyond it devices_capped is set and devices " +
      "is a lower bound",
  ),
});

/** Six significant digits: enough to read, short enough for one line. */
function round(value: number): number {
  return Number(value.toPrecision(6));
}

export default defineHandler({
  name: "digest",
  summary: "Logs a periodic one-line digest of the samples seen",
  version: "0.1.0",
  description: "Every `interval` logs `Digest` with the samples and tasks seen since the last " +
    "digest, the rate, the number of devices and count/min/mean/max per metric. Samples pass " +
    "on unchanged.",
  config: configSchema,
  create(config, ctx) {
    const { interval, max_metrics: maxMetrics, max_devices: maxDevices } = config;
    const { clock, logger } = ctx;
    let metrics = new Map<string, Stats>();
    let devices = new Set<string>();
    let devicesCapped = false;
    let samples = 0;
    let tasks = 0;
    let untracked = 0;
    let totalSamples = 0;
    let windowStart = clock.now();

    function statsFor(metric: string): Stats | undefined {
      let stats = metrics.get(metric);
      if (!stats && metrics.size < maxMetrics) {
        stats = new Stats();
        metrics.set(metric, stats);
      }
      return stats;
    }

    function noteDevice(device: string): void {
      if (devices.size < maxDevices) devices.add(device);
      else if (!devices.has(device)) devicesCapped = true;
    }

    /** Logs the window's digest and starts a new window; nothing when the window is empty. */
    function report(final: boolean): void {
      const now = clock.now();
      if (samples === 0 && tasks === 0) {
        windowStart = now;
        return;
      }
      const elapsed = Math.max(1, now - windowStart);
      const byMetric: Record<string, MetricDigest> = {};
      for (const [name, s] of metrics) {
        byMetric[name] = { count: s.count, min: s.min, mean: round(s.sum / s.count), max: s.max };
      }
      totalSamples += samples;
      logger.info("Digest", {
        samples,
        tasks,
        rate: round((samples * 1000) / elapsed),
        devices: devices.size,
        ...(devicesCapped ? { devices_capped: true } : {}),
        metrics: byMetric,
        ...(untracked > 0 ? { untracked_samples: untracked } : {}),
        window_ms: now - windowStart,
        total_samples: totalSamples,
        ...(final ? { final: true } : {}),
      });
      metrics = new Map();
      devices = new Set();
      devicesCapped = false;
      samples = 0;
      tasks = 0;
      untracked = 0;
      windowStart = now;
    }

    const stopped = new AbortController();
    const signal = AbortSignal.any([ctx.signal, stopped.signal]);
    const timer = (async function digestTimer() {
      while (await sleepUnlessAborted(clock, interval, signal)) report(false);
    })().catch((error) => {
      logger.error(`Digest timer failed: ${errorMessage(error)}`, { error });
    });

    return {
      handle(batch: readonly Sample[]): void {
        tasks++;
        const n = batch.length;
        samples += n;
        // Batches usually hold runs of one device and metric: look up only on change.
        let device: string | undefined;
        let metric: string | undefined;
        let stats: Stats | undefined;
        for (let i = 0; i < n; i++) {
          const s = batch[i]!;
          if (s.device !== device) {
            device = s.device;
            noteDevice(device);
          }
          if (s.metric !== metric) {
            metric = s.metric;
            stats = statsFor(metric);
          }
          if (stats) {
            const v = s.value;
            stats.count++;
            stats.sum += v;
            if (v < stats.min) stats.min = v;
            if (v > stats.max) stats.max = v;
          } else {
            untracked++;
          }
        }
      },
      flush(): Promise<void> {
        report(true);
        return Promise.resolve();
      },
      async close(): Promise<void> {
        stopped.abort();
        await timer;
      },
    };
  },
});

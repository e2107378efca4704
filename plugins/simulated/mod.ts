/**
 * The `simulated` device: factory sensors (temperature, pressure, humidity)
 * made of a sine wave, Gaussian noise, slow drift, spikes and stuck stretches,
 * reproducible for a seed and paced by the injected clock.
 *
 * @module
 */
import {
  defineDevice,
  type DeviceIO,
  type Sample,
  seedFrom,
  settledOrAborted,
  sleepUnlessAborted,
  untilAborted,
} from "../../core/mod.ts";
import {
  autoTick,
  configSchema,
  MAX_BATCH_PER_METRIC,
  MAX_CATCH_UP_MS,
  unitOf,
} from "./_config.ts";
import { SeriesGenerator } from "./_series.ts";

export {
  autoTick,
  DEFAULT_TICK_MS,
  MAX_BATCH_PER_METRIC,
  MAX_CATCH_UP_MS,
  MAX_RATE,
  METRIC_DEFAULTS,
  type MetricConfig,
  type MetricName,
  METRICS,
  type SimulatedConfig,
} from "./_config.ts";
export type { SignalParams } from "./_series.ts";

export default defineDevice({
  name: "simulated",
  summary: "Simulated factory sensors: temperature, pressure and humidity",
  version: "0.1.0",
  description: "Each metric is a sine wave around a level, plus Gaussian noise, slow drift, " +
    "occasional spikes and stuck stretches, reproducible for a seed. Samples are paced by " +
    "catching up to the clock, so the long-run rate is exact even when timers fire late.",
  config: configSchema,
  create(config, ctx) {
    const { rate, start_seq: startSeq } = config;
    const seed = config.seed ?? seedFrom(ctx.name);
    const tick = config.tick ?? autoTick(rate);
    const step = 1000 / rate;
    const perBatch = Math.max(MAX_BATCH_PER_METRIC, Math.ceil((rate * tick) / 1000));
    const maxCatchUp = Math.max(1, Math.ceil((rate * Math.max(MAX_CATCH_UP_MS, 2 * tick)) / 1000));
    const limit = config.limit ?? Infinity;
    const series = config.metrics.map(({ metric, ...params }) => {
      const { unit, scale, offset } = unitOf(metric, config.units);
      return new SeriesGenerator({
        device: ctx.name,
        metric,
        unit,
        scale,
        offset,
        params,
        rate,
        seed,
        startSeq,
      });
    });
    const log = ctx.logger;

    return {
      async run(io: DeviceIO): Promise<void> {
        const { signal } = io;
        const { clock } = ctx;
        io.up();
        const t0 = clock.now();
        let next = 0; // index of the next sample of every metric
        let emitted = 0;
        let skipped = 0;
        let skippedLoggedAt = -Infinity;
        while (!signal.aborted) {
          const now = clock.now();
          // Samples with ts <= now; the epsilon absorbs float error at exact multiples.
          const due = Math.floor(((now - t0) * rate) / 1000 + 1e-9) + 1;
          if (due - next > maxCatchUp) {
            skipped += due - maxCatchUp - next;
            next = due - maxCatchUp;
            if (now - skippedLoggedAt >= 10_000) {
              log.warn("Generator fell behind the clock; skipped samples", {
                skipped_per_metric: skipped,
              });
              skippedLoggedAt = now;
              skipped = 0;
            }
          }
          while (next < due && emitted < limit) {
            const count = Math.min(due - next, perBatch, limit - emitted);
            const batch: Sample[] = [];
            for (let m = 0; m < series.length; m++) series[m]!.generate(batch, t0, next, count);
            next += count;
            emitted += count;
            const pending = io.emit(batch);
            if (pending) await settledOrAborted(pending, signal);
            if (signal.aborted) return;
          }
          if (emitted >= limit) {
            log.info("Sample limit reached; idling until stopped", { limit });
            await untilAborted(signal);
            return;
          }
          const wait = Math.max(tick, t0 + next * step - clock.now());
          if (!(await sleepUnlessAborted(clock, wait, signal))) return;
        }
      },
    };
  },
});

/**
 * The benchmark's measuring handler: counts samples and records the latency
 * of every sample (its timestamp to the moment the handler runs, which is
 * the end of the chain) into a shared histogram. Does no other work, so
 * it stands in for a no-op handler.
 *
 * @module
 */
import { defineHandler, z } from "../core/mod.ts";
import { LatencyHistogram } from "./_harness.ts";

/** Shared measurements of every probe instance in this process. */
export const probe = {
  samples: 0,
  tasks: 0,
  latency: new LatencyHistogram(),
  /** Only samples stamped at or after this time are measured (skips warm-up). */
  since: 0,
  reset(since: number): void {
    this.samples = 0;
    this.tasks = 0;
    this.latency.reset();
    this.since = since;
  },
};

export default defineHandler({
  name: "bench_probe",
  summary: "Counts samples and records their latency (benchmarks)",
  config: z.strictObject({}),
  create(_config, ctx) {
    return {
      handle(samples) {
        const now = ctx.clock.now();
        const since = probe.since;
        let counted = 0;
        for (let i = 0; i < samples.length; i++) {
          const ts = samples[i]!.ts;
          if (ts < since) continue;
          probe.latency.record(now - ts);
          counted++;
        }
        probe.samples += counted;
        probe.tasks++;
      },
    };
  },
});

/**
 * The probe handler of the `redis` scenarios, loaded by processor processes
 * through `plugins:`. Counts the samples it handles inside the measuring
 * window (by the time it handles them) and records their latency (timestamp
 * to handler), then writes a JSON summary to `file` when the processor stops.
 *
 * @module
 */
import { defineHandler, z } from "../../core/mod.ts";
import { LatencyHistogram } from "../_harness.ts";

/** What the probe writes on close. */
export interface ProbeSummary {
  samples: number;
  tasks: number;
  p50: number;
  p99: number;
  max: number;
}

export default defineHandler({
  name: "bench_redis_probe",
  summary: "Counts samples and their latency, writes a summary on stop (benchmarks)",
  config: z.strictObject({
    file: z.string().describe("Where to write the JSON summary on close"),
    from: z.number().describe(
      "Start of the measuring window (ms since the epoch)",
    ),
    to: z.number().describe("End of the measuring window (ms since the epoch)"),
  }),
  create(config, ctx) {
    const latency = new LatencyHistogram();
    let samples = 0;
    let tasks = 0;
    return {
      handle(list) {
        const now = ctx.clock.now();
        if (now < config.from || now >= config.to) return;
        for (let i = 0; i < list.length; i++) latency.record(now - list[i]!.ts);
        samples += list.length;
        tasks++;
      },
      async close() {
        const summary: ProbeSummary = {
          samples,
          tasks,
          ...latency.summary(),
        };
        await Deno.writeTextFile(config.file, JSON.stringify(summary));
      },
    };
  },
});

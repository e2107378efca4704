/**
 * The probe handler of the scenarios with separate processes (`redis`,
 * `fleet`), loaded by processor processes through `plugins:`. Counts the
 * samples it handles inside the measuring window (by the time it handles
 * them) and records their latency (timestamp to handler), then writes a JSON
 * summary to `file` when the processor stops, or as soon as `samples` were
 * counted when that is set.
 *
 * @module
 */
import { defineHandler, z } from "../../core/mod.ts";
import { LatencyHistogram } from "../_harness.ts";

/** What the probe writes. */
export interface ProbeSummary {
  samples: number;
  tasks: number;
  p50: number;
  p99: number;
  max: number;
  /** Clock time (ms) the first counted task was handled. */
  first: number;
  /** Clock time (ms) the last counted task was handled. */
  last: number;
}

export default defineHandler({
  name: "bench_redis_probe",
  summary: "Counts samples and their latency, writes a summary on stop (benchmarks)",
  config: z.strictObject({
    file: z.string().describe("Where to write the JSON summary"),
    from: z.number().describe(
      "Start of the measuring window (ms since the epoch)",
    ),
    to: z.number().describe("End of the measuring window (ms since the epoch)"),
    samples: z.int().positive().optional().describe(
      "Stop counting after this many samples and write the summary at once",
    ),
  }),
  create(config, ctx) {
    const latency = new LatencyHistogram();
    let samples = 0;
    let tasks = 0;
    let first = 0, last = 0;
    let written: Promise<void> | undefined;
    const write = () =>
      written ??= Deno.writeTextFile(
        config.file,
        JSON.stringify({ samples, tasks, ...latency.summary(), first, last } as ProbeSummary),
      );
    return {
      async handle(list) {
        if (written) return;
        const now = ctx.clock.now();
        if (now < config.from || now >= config.to) return;
        for (let i = 0; i < list.length; i++) latency.record(now - list[i]!.ts);
        if (tasks === 0) first = now;
        last = now;
        samples += list.length;
        tasks++;
        if (config.samples !== undefined && samples >= config.samples) await write();
      },
      async close() {
        await write();
      },
    };
  },
});

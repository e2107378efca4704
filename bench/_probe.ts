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
  /**
   * Lets a started pipeline warm up, then measures for `measureMs`: only
   * samples stamped inside the window, or (`countAll`) every sample handled
   * in it, for generators that run behind the clock under backpressure.
   */
  async measure(warmupMs: number, measureMs: number, countAll = false): Promise<Measurement> {
    await new Promise((r) => setTimeout(r, warmupMs));
    const started = performance.now();
    this.reset(countAll ? 0 : Date.now());
    await new Promise((r) => setTimeout(r, measureMs));
    return {
      seconds: (performance.now() - started) / 1000,
      samples: this.samples,
      tasks: this.tasks,
      latency: this.latency.summary(),
    };
  },
};

/** Batching and workers of {@link probePipelineYaml}. */
export interface ProbePipelineOptions {
  maxSamples?: number;
  maxWait?: string;
  capacity?: number;
  workers?: number;
  prefetch?: number;
  /** The `brokers:` entry's YAML flow mapping; the memory broker when left out. */
  broker?: string;
}

/**
 * The YAML of a scenario's broker (memory unless `broker` says), probe handler and one pipeline
 * `bench` reading `devices`, with a blocking hub queue.
 */
export function probePipelineYaml(
  devices: readonly string[],
  o: ProbePipelineOptions = {},
): string {
  const {
    maxSamples = 1000,
    maxWait = "5ms",
    capacity = 100_000,
    workers = 1,
    broker = "{ type: memory }",
  } = o;
  return `
brokers:
  mem: ${broker}
handlers:
  probe: { type: bench_probe }
pipelines:
  bench:
    from: [${devices.join(", ")}]
    via: mem
    handlers: [probe]
    batch: { max_samples: ${maxSamples}, max_wait: ${maxWait} }
    hub_queue: { capacity: ${capacity}, overflow: block }
    workers: ${workers}
${o.prefetch === undefined ? "" : `    prefetch: ${o.prefetch}\n`}`;
}

/** What {@link probe.measure} saw. */
export interface Measurement {
  seconds: number;
  samples: number;
  tasks: number;
  latency: { p50: number; p99: number; max: number };
}

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

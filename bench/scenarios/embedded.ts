/**
 * Scenario `embedded`: simulated devices → hub queue → gateway → memory
 * broker → workers → a no-op handler, all in one process, as fast as it
 * goes (devices offer more than the pipeline can take; backpressure paces
 * them). Scenario `embedded-latency`: the same at a paced 100,000 samples/s.
 * `embedded-sqlite` and `embedded-sqlite-latency`: the same on the durable
 * `sqlite` broker (a fresh file under ./data, removed afterwards).
 *
 * @module
 */
import { BUILTIN_PLUGINS } from "../../cli/builtins.ts";
import { loadConfigText } from "../../core/config/mod.ts";
import { createLogger } from "../../core/log.ts";
import { PluginRegistry } from "../../core/registry.ts";
import { Runtime } from "../../core/runtime/runtime.ts";
import { type BenchResult, machine } from "../_harness.ts";
import probeHandler, { probe, probePipelineYaml } from "../_probe.ts";

/** Options of one embedded run. */
export interface EmbeddedOptions {
  scenario: string;
  description: string;
  /** Samples per second offered in total; `null` = more than the pipeline takes. */
  offered: number | null;
  devices: number;
  warmupMs: number;
  measureMs: number;
  maxSamples: number;
  maxWait: string;
  /** The broker: `memory` (default) or `sqlite` on a fresh file. */
  broker?: "memory" | "sqlite";
}

/** A fresh broker file for a `sqlite` run (the bench may write only ./data). */
const SQLITE_DIR = "./data/bench";

function yaml(o: EmbeddedOptions): string {
  // Three metrics per device; rate is per metric.
  const total = o.offered ?? 6_000_000;
  const rate = total / o.devices / 3;
  const devices = Array.from(
    { length: o.devices },
    (_, i) =>
      `  sim_${i}:\n    type: simulated\n    config: { rate: ${rate}, tick: ${
        o.offered === null ? "10ms" : "1ms"
      } }`,
  ).join("\n");
  return `
log: { level: warn }
devices:
${devices}
${
    probePipelineYaml(Array.from({ length: o.devices }, (_, i) => `sim_${i}`), {
      maxSamples: o.maxSamples,
      maxWait: o.maxWait,
      capacity: Math.max(100_000, o.maxSamples * 20),
      workers: 2,
      prefetch: 4,
      ...(o.broker === "sqlite"
        ? {
          // The memory broker's capacity, so both hold the same backlog.
          broker: `{ type: sqlite, config: { path: ${
            JSON.stringify(sqlitePath(o))
          }, capacity: 256 } }`,
        }
        : {}),
    })
  }`;
}

function sqlitePath(o: EmbeddedOptions): string {
  return `${Deno.cwd()}/${SQLITE_DIR.slice(2)}/${o.scenario}.db`;
}

async function removeSqlite(o: EmbeddedOptions): Promise<void> {
  for (const suffix of ["", "-wal", "-shm", "-owners"]) {
    await Deno.remove(sqlitePath(o) + suffix, { recursive: true }).catch(() => {});
  }
}

/** Runs one embedded measurement. */
export async function runEmbedded(o: EmbeddedOptions): Promise<BenchResult> {
  if (o.broker === "sqlite") await removeSqlite(o);
  const registry = PluginRegistry.of([...BUILTIN_PLUGINS, probeHandler]);
  const loaded = await loadConfigText(yaml(o), {
    file: `${o.scenario}.yaml`,
    registry,
    env: {},
  });
  const runtime = await Runtime.create(loaded, {
    logger: createLogger({ level: "warn" }),
    seed: 1,
  });
  runtime.start();
  const { seconds, samples, tasks, latency } = await probe.measure(o.warmupMs, o.measureMs);
  const summary = await runtime.stop();
  let fileBytes: number | undefined;
  if (o.broker === "sqlite") {
    fileBytes = 0;
    for (const suffix of ["", "-wal"]) {
      fileBytes += await Deno.stat(sqlitePath(o) + suffix).then((s) => s.size, () => 0);
    }
    await removeSqlite(o);
  }
  return {
    scenario: o.scenario,
    description: o.description,
    samples_per_second: samples / seconds,
    latency_ms: latency,
    offered_per_second: o.offered,
    duration_s: seconds,
    samples,
    ...machine(),
    extra: {
      devices: o.devices,
      max_samples: o.maxSamples,
      max_wait: o.maxWait,
      tasks_per_second: Math.round(tasks / seconds),
      samples_dropped: summary.samples_dropped,
      tasks_dead_lettered: summary.tasks_dead_lettered,
      broker: o.broker ?? "memory",
      ...(fileBytes === undefined ? {} : { broker_file_bytes_at_end: fileBytes }),
    },
  };
}

/** `embedded`: throughput. */
export function embedded(): Promise<BenchResult> {
  return runEmbedded({
    scenario: "embedded",
    description: "simulated devices → memory broker → no-op handler, as fast as it goes",
    offered: null,
    devices: 4,
    warmupMs: 2000,
    measureMs: 10_000,
    maxSamples: 1000,
    maxWait: "20ms",
  });
}

/** `embedded-latency`: latency at 100,000 samples/s offered. */
export function embeddedLatency(): Promise<BenchResult> {
  return runEmbedded({
    scenario: "embedded-latency",
    description: "simulated devices → memory broker → no-op handler at 100,000 samples/s",
    offered: 100_000,
    devices: 4,
    warmupMs: 2000,
    measureMs: 10_000,
    maxSamples: 1000,
    maxWait: "5ms",
  });
}

/** `embedded-sqlite`: throughput on the durable sqlite broker. */
export function embeddedSqlite(): Promise<BenchResult> {
  return runEmbedded({
    scenario: "embedded-sqlite",
    description: "simulated devices → sqlite broker (synchronous: full) → no-op handler, " +
      "as fast as it goes",
    offered: null,
    devices: 4,
    warmupMs: 2000,
    measureMs: 10_000,
    maxSamples: 1000,
    maxWait: "20ms",
    broker: "sqlite",
  });
}

/** `embedded-sqlite-latency`: latency on the sqlite broker at 100,000 samples/s offered. */
export function embeddedSqliteLatency(): Promise<BenchResult> {
  return runEmbedded({
    scenario: "embedded-sqlite-latency",
    description: "simulated devices → sqlite broker (synchronous: full) → no-op handler " +
      "at 100,000 samples/s",
    offered: 100_000,
    devices: 4,
    warmupMs: 2000,
    measureMs: 10_000,
    maxSamples: 1000,
    maxWait: "5ms",
    broker: "sqlite",
  });
}

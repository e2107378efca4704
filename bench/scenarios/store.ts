/**
 * Scenario `store`: simulated devices → memory broker → workers → the
 * `store` handler writing to a local PostgreSQL server (batched, idempotent
 * inserts), as fast as it goes; the rate counts samples whose insert has
 * committed. Scenario `store-pglite`: the same into embedded PGlite
 * (`./data/bench-pglite`). Each run writes into a fresh schema and drops it
 * at the end.
 *
 * PostgreSQL URL: `BENCH_DATABASE_URL`, default
 * `postgres://postgres@127.0.0.1:5432/postgres`; `BENCH_STORE_WORKERS` and
 * `BENCH_STORE_BATCH` override the workers (= connections) and samples per
 * task of `store`.
 *
 * @module
 */
import { BUILTIN_PLUGINS } from "../../cli/builtins.ts";
import { loadConfigText } from "../../core/config/mod.ts";
import { createLogger } from "../../core/log.ts";
import { PluginRegistry } from "../../core/registry.ts";
import { Runtime } from "../../core/runtime/runtime.ts";
import { openDatabase } from "../../handlers/_db/mod.ts";
import store from "../../handlers/store/mod.ts";
import { type BenchResult, machine } from "../_harness.ts";
import probeHandler, { probe } from "../_probe.ts";

interface StoreBenchOptions {
  scenario: string;
  description: string;
  /** The store handler's connection fields (`url` or `data_dir`). */
  target: { url: string } | { data_dir: string };
  devices: number;
  workers: number;
  maxSamples: number;
  hubCapacity: number;
  warmupMs: number;
  measureMs: number;
}

function yaml(o: StoreBenchOptions, schema: string): string {
  const names = Array.from({ length: o.devices }, (_, i) => `sim_${i}`);
  // Far more than the database takes: the bounded broker and hub queue push back on the
  // devices, which skip what they cannot emit (so latency stays meaningful).
  const rate = 3_000_000 / o.devices / 3;
  return `
log: { level: error }
admin: { enabled: false }
devices:
${
    names.map((n) => `  ${n}:\n    type: simulated\n    config: { rate: ${rate}, tick: 10ms }`)
      .join("\n")
  }
brokers:
  mem: { type: memory, config: { capacity: ${o.workers * 4} } }
handlers:
  db:
    type: store
    config: ${JSON.stringify({ ...o.target, schema, pool: o.workers })}
  probe: { type: bench_probe }
pipelines:
  bench:
    from: [${names.join(", ")}]
    via: mem
    handlers: [db, probe]
    batch: { max_samples: ${o.maxSamples}, max_wait: 20ms }
    hub_queue: { capacity: ${o.hubCapacity}, overflow: block }
    workers: ${o.workers}
    prefetch: 2
`;
}

/** Runs one storage measurement. */
export async function runStore(o: StoreBenchOptions): Promise<BenchResult> {
  const schema = `bench_${Date.now().toString(36)}`;
  const registry = PluginRegistry.of([...BUILTIN_PLUGINS, probeHandler]);
  const loaded = await loadConfigText(yaml(o, schema), {
    file: `${o.scenario}.yaml`,
    registry,
    env: {},
    baseDir: Deno.cwd(),
  });
  const runtime = await Runtime.create(loaded, {
    logger: createLogger({ level: "warn" }),
    seed: 1,
  });
  // Hold the database open past the runtime's stop, to count and drop.
  const db = await openDatabase(store.config.parse({ ...o.target, schema }), {
    dataDir: Deno.cwd(),
    logger: createLogger({ level: "warn" }),
  });
  try {
    runtime.start();
    // Count every sample stored in the window: under backpressure the generators run
    // behind the clock, so their timestamps predate it.
    const { seconds, samples, tasks, latency } = await probe.measure(
      o.warmupMs,
      o.measureMs,
      true,
    );
    const summary = await runtime.stop();
    const { rows } = await db.query(
      `SELECT count(*)::float8 AS n FROM "${schema}".telemetry_samples`,
    );
    return {
      scenario: o.scenario,
      description: o.description,
      samples_per_second: samples / seconds,
      latency_ms: latency,
      offered_per_second: null,
      duration_s: seconds,
      samples,
      ...machine(),
      extra: {
        engine: db.kind,
        devices: o.devices,
        workers: o.workers,
        max_samples: o.maxSamples,
        tasks_per_second: Math.round(tasks / seconds),
        rows_stored_in_run: rows[0]?.n,
        samples_processed_in_run: summary.samples_processed,
        tasks_retried: summary.tasks_retried,
        tasks_dead_lettered: summary.tasks_dead_lettered,
      },
    };
  } finally {
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await db.release();
  }
}

/** `store`: into the local PostgreSQL server. */
export function storePostgres(): Promise<BenchResult> {
  return runStore({
    scenario: "store",
    description: "simulated devices → memory broker → store handler → local PostgreSQL",
    target: {
      url: Deno.env.get("BENCH_DATABASE_URL") ??
        "postgres://postgres@127.0.0.1:5432/postgres",
    },
    devices: 4,
    // One connection per core: more backends contend for the same index pages.
    workers: Number(Deno.env.get("BENCH_STORE_WORKERS") ?? 2),
    maxSamples: Number(Deno.env.get("BENCH_STORE_BATCH") ?? 5000),
    hubCapacity: 100_000,
    warmupMs: 2000,
    measureMs: 10_000,
  });
}

/** `store-pglite`: into embedded PGlite in `./data/bench-pglite`. */
export function storePglite(): Promise<BenchResult> {
  return runStore({
    scenario: "store-pglite",
    description: "simulated devices → memory broker → store handler → embedded PGlite",
    target: { data_dir: "./data/bench-pglite" },
    devices: 4,
    workers: 2,
    maxSamples: 2000,
    hubCapacity: 20_000,
    warmupMs: 2000,
    measureMs: 10_000,
  });
}

/**
 * Scenario `embedded-chain`: the default pipeline of `telemetry.yaml`, as
 * shipped (durable `sqlite` broker, batching, workers and the handler chain
 * `analyze → anomaly → aggregate → store → alert → digest` on embedded
 * PGlite), with its three sensors replaced by simulated devices offering more
 * than it takes, and the probe at the end of the chain. One process; the
 * broker file and the PGlite data directory are fresh under ./data/bench and
 * removed afterwards. Reports samples/s, latency, the per-hop breakdown and
 * the process's CPU per sample.
 *
 * @module
 */
import { parseDocument } from "yaml";
import { BUILTIN_PLUGINS } from "../../cli/builtins.ts";
import { loadConfigText } from "../../core/config/mod.ts";
import { createLogger } from "../../core/log.ts";
import { PluginRegistry } from "../../core/registry.ts";
import { Runtime } from "../../core/runtime/runtime.ts";
import { type BenchResult, machine, until } from "../_harness.ts";
import {
  breakdown,
  cpuSeconds,
  cpuShare,
  loadAverage,
  parseScrape,
  processedBetween,
} from "../_hops.ts";
import probeHandler, { probe } from "../_probe.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const DEVICES = 4;

/** telemetry.yaml with fast simulated devices, fresh storage and the probe last. */
async function shippedWithProbe(dir: string): Promise<{ yaml: string; chain: string[] }> {
  const doc = parseDocument(await Deno.readTextFile(`${ROOT}telemetry.yaml`));
  const names = Array.from({ length: DEVICES }, (_, i) => `sim_${i}`);
  doc.set("role", "all");
  doc.set("log", { level: "error" });
  doc.set("admin", { enabled: false });
  doc.set(
    "devices",
    Object.fromEntries(
      names.map((n) => [n, { type: "simulated", config: { rate: 2_000_000 / DEVICES / 3 } }]),
    ),
  );
  doc.delete("tests");
  const brokers = doc.get("brokers") as { items: { key: { value: string } }[] };
  const broker = String(brokers.items[0]!.key.value);
  doc.setIn(["brokers", broker, "config"], { path: `${dir}/broker.db` });
  const handlers = doc.get("handlers") as { items: { key: { value: string } }[] };
  for (const item of handlers.items) {
    const name = String(item.key.value);
    if (["anomaly", "aggregate", "store"].includes(String(doc.getIn(["handlers", name, "type"])))) {
      doc.setIn(["handlers", name, "config", "data_dir"], `${dir}/pg`);
    }
  }
  doc.setIn(["handlers", "probe"], { type: "bench_probe" });
  const pipelines = doc.get("pipelines") as { items: { key: { value: string } }[] };
  const pipeline = String(pipelines.items[0]!.key.value);
  doc.setIn(["pipelines", pipeline, "from"], names);
  const chain = (doc.getIn(["pipelines", pipeline, "handlers"]) as { toJSON(): string[] })
    .toJSON();
  doc.setIn(["pipelines", pipeline, "handlers"], [...chain, "probe"]);
  return { yaml: doc.toString(), chain };
}

/** `embedded-chain`: the shipped pipeline on PGlite, as fast as it goes. */
export async function embeddedChain(): Promise<BenchResult> {
  const dir = `${ROOT}data/bench/chain-${crypto.randomUUID().slice(0, 6)}`;
  await Deno.mkdir(dir, { recursive: true });
  try {
    const { yaml, chain } = await shippedWithProbe(dir);
    const registry = PluginRegistry.of([...BUILTIN_PLUGINS, probeHandler]);
    const loaded = await loadConfigText(yaml, {
      file: "embedded-chain.yaml",
      registry,
      env: {},
      baseDir: ROOT,
    });
    const runtime = await Runtime.create(loaded, {
      logger: createLogger({ level: "error" }),
      seed: 1,
    });
    runtime.start();
    const read = async () => ({
      at: performance.now(),
      cpu: (await cpuSeconds([Deno.pid]))[0]!,
      metrics: parseScrape(await runtime.metrics.registry.metrics()),
    });
    // Opening a fresh PGlite takes seconds (more on a busy machine): warm up from the first
    // samples through the chain, then measure, with a snapshot on each side of the window.
    await until(
      async () => (await read()).metrics.get("telemetry_samples_processed_total")!.count > 0,
      "the first samples through the chain",
      120_000,
    );
    const warmupMs = 3000, measureMs = 10_000;
    const loadDuring: number[] = [];
    const measured = probe.measure(warmupMs, measureMs, true);
    await new Promise((r) => setTimeout(r, warmupMs));
    const before = await read();
    const loadTimer = setInterval(() => loadAverage().then((l) => loadDuring.push(l)), 1000);
    const { seconds, samples, tasks, latency } = await measured;
    clearInterval(loadTimer);
    const after = await read();
    const summary = await runtime.stop();
    const processed = processedBetween(before.metrics, after.metrics);
    const cpu = after.cpu - before.cpu;
    return {
      scenario: "embedded-chain",
      description: "telemetry.yaml's pipeline as shipped (sqlite broker, analyze → anomaly → " +
        "aggregate → store → alert → digest on PGlite), fast simulated devices, one process",
      samples_per_second: samples / seconds,
      latency_ms: latency,
      offered_per_second: null,
      duration_s: seconds,
      samples,
      ...machine(),
      extra: {
        devices: DEVICES,
        chain,
        tasks_per_second: Math.round(tasks / seconds),
        samples_dropped: summary.samples_dropped,
        tasks_dead_lettered: summary.tasks_dead_lettered,
        load_average_during: loadDuring,
        hops: breakdown(
          [before.metrics, after.metrics],
          [before.metrics, after.metrics],
          chain,
          processed,
        ),
        cpu: { process: cpuShare(cpu, (after.at - before.at) / 1000, processed) },
      },
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

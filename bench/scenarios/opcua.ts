/**
 * Scenario `opcua`: a node-opcua server in its own process (the tests'
 * `opcua_server.ts`) changes `BENCH_OPCUA_NODES` variables (default 500)
 * every `BENCH_OPCUA_EVERY` ms (default 20: 25,000 changes/s offered), each
 * stamped with the time of the change as its source timestamp; an `opcua`
 * device monitors all of them in one subscription (sampling interval 0,
 * publishing interval `BENCH_OPCUA_PUBLISH` ms, default 20) into the
 * pipeline (memory broker → no-op probe).
 *
 * - Throughput: monitored-item changes handled per second, over 10 s;
 *   `offered/s` is what the server really made (it falls behind its timer
 *   when the machine is busy), `asked_per_second` what it was asked for.
 * - Latency: the value's source timestamp → end of the handler chain. It
 *   includes the wait for the next publish (up to one publishing interval).
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { BUILTIN_PLUGINS } from "../../cli/builtins.ts";
import { loadConfigText } from "../../core/config/mod.ts";
import { createLogger } from "../../core/log.ts";
import { PluginRegistry } from "../../core/registry.ts";
import { Runtime } from "../../core/runtime/runtime.ts";
import { startOpcuaServer } from "../../tests/_fixtures/opcua.ts";
import { type BenchResult, machine, until } from "../_harness.ts";
import probeHandler, { probe, probePipelineYaml } from "../_probe.ts";

const env = (name: string, fallback: number) => Number(Deno.env.get(name) ?? fallback);
const NODES = env("BENCH_OPCUA_NODES", 500);
const EVERY = env("BENCH_OPCUA_EVERY", 20);
const PUBLISH = env("BENCH_OPCUA_PUBLISH", 20);
const WARMUP_MS = 3000;
const MEASURE_MS = 10_000;

function yaml(endpoint: string): string {
  const nodes = Array.from(
    { length: NODES },
    (_, i) => `        - { node_id: "ns=1;s=Bench.V${i}", metric: v${i} }`,
  ).join("\n");
  return `
log: { level: warn }
admin: { enabled: false }
devices:
  bench_opcua:
    type: opcua
    config:
      endpoint: "${endpoint}"
      publishing_interval: ${PUBLISH}ms
      sampling_interval: 0
      queue_size: 100
      nodes:
${nodes}
${probePipelineYaml(["bench_opcua"])}`;
}

/** `opcua`: monitored-item changes per second from a node-opcua server, and latency. */
export async function opcuaScenario(): Promise<BenchResult> {
  const server = await startOpcuaServer({ bench: NODES, every: EVERY });
  const registry = PluginRegistry.of([...BUILTIN_PLUGINS, probeHandler]);
  const loaded = await loadConfigText(yaml(server.endpoint), {
    file: "opcua.yaml",
    registry,
    env: {},
  });
  const runtime = await Runtime.create(loaded, {
    logger: createLogger({ level: "warn" }),
    seed: 1,
  });
  try {
    runtime.start();
    await until(() => runtime.devices()[0]?.state === "up", "the opcua device up", 30_000);
    const before = server.changes();
    let cpu = cpuUsage();
    const m = await probe.measure(WARMUP_MS, MEASURE_MS);
    cpu = cpuUsage(cpu);
    // This process's CPU time over warm-up and measurement (the device, the pipeline, the probe):
    // what a change costs, whatever share of the cores the machine's other work leaves it.
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    // What the server managed to change (it reports once a second), against what was asked.
    const made = (server.changes() - before) / ((WARMUP_MS + MEASURE_MS) / 1000);
    const device = runtime.devices()[0];
    const summary = await runtime.stop();
    return {
      scenario: "opcua",
      description:
        `node-opcua server (own process, ${NODES} variables changed every ${EVERY} ms) → ` +
        `opcua device (one subscription, sampling 0, publishing ${PUBLISH} ms) → memory broker → ` +
        "no-op handler; latency = source timestamp → handler",
      samples_per_second: m.samples / m.seconds,
      latency_ms: m.latency,
      offered_per_second: made,
      duration_s: m.seconds,
      samples: m.samples,
      ...machine(),
      extra: {
        nodes: NODES,
        change_every_ms: EVERY,
        publishing_interval_ms: PUBLISH,
        asked_per_second: NODES * 1000 / EVERY,
        hub_cpu_seconds: cpuSeconds,
        changes_per_hub_cpu_second: Math.round(
          m.samples / (cpuSeconds * MEASURE_MS / (WARMUP_MS + MEASURE_MS)),
        ),
        read_errors: device?.read_errors,
        samples_dropped: summary.samples_dropped,
      },
    };
  } finally {
    await runtime.stop().catch(() => {});
    await server.kill("SIGTERM");
  }
}

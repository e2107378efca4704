/**
 * Scenario `modbus`: the `modbus` device polls 1,000 holding registers
 * (uint16, addresses 1000–1999: eight batched reads of at most 125) of a
 * local Modbus TCP server (modbus-serial's ServerTCP in its own Deno
 * process) as fast as it answers (interval 0), and feeds the pipeline
 * (memory broker → no-op probe handler).
 *
 * - Throughput: registers decoded per second (one sample each), counted by
 *   the probe handler over the measuring window. Goal ≥ 20,000/s.
 * - Latency: each sample's `ts` is taken when its read's reply arrives; the
 *   probe records handler time − `ts` (read → decode → hub queue → broker →
 *   handler).
 *
 * @module
 */
import { BUILTIN_PLUGINS } from "../../cli/builtins.ts";
import { loadConfigText } from "../../core/config/mod.ts";
import { createLogger } from "../../core/log.ts";
import { PluginRegistry } from "../../core/registry.ts";
import { Runtime } from "../../core/runtime/runtime.ts";
import { type BenchResult, machine, until } from "../_harness.ts";
import probeHandler, { probe, probePipelineYaml } from "../_probe.ts";
import { startModbusTcpServer } from "../../tests/_fixtures/modbus.ts";
import { freePort } from "../../tests/_fixtures/tools.ts";

const REGISTERS = 1000;
const FIRST = 1000;

function yaml(port: number): string {
  const values = Array.from(
    { length: REGISTERS },
    (_, i) => `            - { metric: r${FIRST + i}, address: ${FIRST + i} }`,
  ).join("\n");
  return `
log: { level: warn }
devices:
  bench_modbus:
    type: modbus
    config:
      connection: { transport: tcp, host: 127.0.0.1, port: ${port} }
      groups:
        - interval: 0ms
          values:
${values}
${probePipelineYaml(["bench_modbus"])}`;
}

/** `modbus`: registers decoded per second from a local Modbus TCP server, and read → handler latency. */
export async function modbus(): Promise<BenchResult> {
  const port = freePort();
  const server = await startModbusTcpServer(port);
  let runtime: Runtime | undefined;
  try {
    const registry = PluginRegistry.of([...BUILTIN_PLUGINS, probeHandler]);
    const loaded = await loadConfigText(yaml(port), { file: "modbus.yaml", registry, env: {} });
    runtime = await Runtime.create(loaded, { logger: createLogger({ level: "warn" }), seed: 1 });
    runtime.start();
    const rt = runtime;
    await until(() => rt.devices()[0]?.state === "up", "modbus device up", 10_000);
    const m = await probe.measure(2000, 10_000);
    const device = runtime.devices()[0];
    const summary = await runtime.stop();
    runtime = undefined;
    const perSecond = m.samples / m.seconds;
    return {
      scenario: "modbus",
      description:
        "Modbus TCP server (separate process) → modbus device (1,000 uint16 holding registers, " +
        "8 reads of ≤125 per round, no interval) → memory broker → no-op handler; latency = " +
        "read reply → handler",
      samples_per_second: perSecond,
      latency_ms: m.latency,
      offered_per_second: null,
      duration_s: m.seconds,
      samples: m.samples,
      ...machine(),
      extra: {
        registers_per_second: Math.round(perSecond),
        reads_per_second: Math.round((perSecond / REGISTERS) * 8),
        read_errors: device?.read_errors,
        samples_dropped: summary.samples_dropped,
      },
    };
  } finally {
    await runtime?.stop();
    await server.stop();
  }
}

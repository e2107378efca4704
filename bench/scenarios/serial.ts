/**
 * Scenario `serial`: text lines written as fast as they go into one end of
 * a pty (socat: its stdin → pty master); the `serial` device reads the other end through the
 * Node.js driver host, decodes each line with a regex and feeds the
 * pipeline (memory broker → no-op probe handler).
 *
 * - Throughput: lines (one sample each) per second, from the first write to
 *   the last sample entering the pipeline.
 * - Host hop latency: each line carries the time it was written; the
 *   runtime's tap sees the decoded sample as it enters the hub queue, so
 *   `tap time − write time` is pty + host read + stdio JSON + decode. It is
 *   measured at a paced 1,000 lines/s (no queueing) and reported as
 *   `latency_ms`; the unpaced figure is in `extra`.
 *
 * Needs `socat` and `deno task drivers`. The pty links live in ./data.
 *
 * @module
 */
import { BUILTIN_PLUGINS } from "../../cli/builtins.ts";
import { loadConfigText } from "../../core/config/mod.ts";
import { createLogger } from "../../core/log.ts";
import { PluginRegistry } from "../../core/registry.ts";
import { Runtime } from "../../core/runtime/runtime.ts";
import { type BenchResult, LatencyHistogram, machine, until } from "../_harness.ts";
import probeHandler, { probe, probePipelineYaml } from "../_probe.ts";

const DATA_DIR = new URL("../../data/", import.meta.url).pathname;
const THROUGHPUT_LINES = 1_500_000;
const LINES_PER_WRITE = 500;
const PACED_RATE = 1000;
const PACED_SECONDS = 5;

const now = () => performance.timeOrigin + performance.now();

function yaml(dir: string): string {
  return `
log: { level: warn }
devices:
  bench_serial:
    type: serial
    config:
      path: ${dir}/B
      baud_rate: 115200
      allowed_paths: [${dir}]
      decode: { mode: regex, pattern: "t=(?<t>[0-9.]+)$" }
${probePipelineYaml(["bench_serial"])}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function writeAll(
  writer: WritableStreamDefaultWriter<Uint8Array>,
  bytes: Uint8Array,
) {
  return writer.write(bytes);
}

/** `serial`: lines/s through a pty pair and the driver host, and the host hop's latency. */
export async function serial(): Promise<BenchResult> {
  const dir = `${DATA_DIR}bench-serial-${Deno.pid}`;
  await Deno.mkdir(dir, { recursive: true });
  const socat = new Deno.Command("socat", {
    // socat's stdin feeds the pty master; the device opens the slave. (Deno may open a pty
    // itself only with --allow-all, which the bench task does not grant.)
    args: ["-d", "-d", "-u", "STDIN", `pty,raw,echo=0,link=${dir}/B`],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let runtime: Runtime | undefined;
  const writer = socat.stdin.getWriter();
  try {
    await until(async () => await exists(`${dir}/B`), "socat", 5000);
    const registry = PluginRegistry.of([...BUILTIN_PLUGINS, probeHandler]);
    const loaded = await loadConfigText(yaml(dir), {
      file: "serial.yaml",
      registry,
      env: {},
    });
    runtime = await Runtime.create(loaded, {
      logger: createLogger({ level: "warn" }),
      seed: 1,
    });
    const hop = new LatencyHistogram();
    let received = 0;
    let lastAt = 0;
    runtime.tap.subscribe({ metric: "t" }, 1e12, (samples) => {
      const at = now();
      for (const s of samples) hop.record(at - s.value);
      received += samples.length;
      lastAt = at;
    });
    runtime.start();
    const rt = runtime;
    await until(
      () => rt.devices()[0]?.state === "up",
      "serial device up",
      10_000,
    );
    const enc = new TextEncoder();
    const chunk = (from: number, count: number) => {
      let text = "";
      const t = now().toFixed(3);
      for (let i = from; i < from + count; i++) text += `n=${i} t=${t}\n`;
      return enc.encode(text);
    };

    // Warm-up, then throughput: as fast as the pty takes it.
    await writeAll(writer, chunk(0, 5000));
    await until(() => received >= 5000, "warm-up lines", 30_000);
    received = 0;
    hop.reset();
    probe.reset(Date.now());
    const started = now();
    for (let n = 0; n < THROUGHPUT_LINES; n += LINES_PER_WRITE) {
      await writeAll(writer, chunk(n, LINES_PER_WRITE));
    }
    await until(() => received >= THROUGHPUT_LINES, "every line", 120_000);
    const seconds = (lastAt - started) / 1000;
    const linesPerSecond = THROUGHPUT_LINES / seconds;
    const unpacedHop = hop.summary();
    const endToEnd = {
      p50: probe.latency.percentile(50),
      p99: probe.latency.percentile(99),
    };

    // Paced: one line per millisecond, written one at a time.
    received = 0;
    hop.reset();
    const pacedLines = PACED_RATE * PACED_SECONDS;
    const pacedStart = performance.now();
    for (let n = 0; n < pacedLines; n++) {
      const due = pacedStart + (n * 1000) / PACED_RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      await writeAll(writer, chunk(n, 1));
    }
    await until(() => received >= pacedLines, "paced lines", 30_000);
    const readErrors = runtime.devices()[0]?.read_errors;
    const summary = await runtime.stop();
    runtime = undefined;
    return {
      scenario: "serial",
      description:
        "pty (socat stdin → pty master) → driver host → serial device (regex) → memory broker → " +
        "no-op handler; latency = write into the pty → sample enters the pipeline, at 1,000 lines/s",
      samples_per_second: linesPerSecond,
      latency_ms: hop.summary(),
      offered_per_second: null,
      duration_s: seconds,
      samples: THROUGHPUT_LINES,
      ...machine(),
      extra: {
        lines_per_second: Math.round(linesPerSecond),
        unpaced_hop_latency_ms: unpacedHop,
        unpaced_end_to_end_latency_ms: endToEnd,
        paced_lines_per_second: PACED_RATE,
        read_errors: readErrors,
        samples_dropped: summary.samples_dropped,
      },
    };
  } finally {
    await writer.close().catch(() => {});
    await runtime?.stop();
    try {
      socat.kill("SIGTERM");
    } catch { /* already gone */ }
    await socat.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

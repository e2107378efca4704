/**
 * Scenario `mqtt`: messages published by `mosquitto_pub` (a second
 * process) to the local Mosquitto at QoS 1; an `mqtt` device subscribed at
 * QoS 1 decodes them (JSON) into the pipeline (memory broker → no-op probe).
 *
 * - Throughput: samples (10 per message) per second, from the first
 *   publish to the last sample handled.
 * - Latency: publish → end of the handler chain, at a paced 1,000
 *   messages/s (each message carries its publish time as `ts`).
 *
 * Runs its own Mosquitto on a free port with `max_queued_messages 0`: with
 * the default (1,000 per client) Mosquitto drops QoS 1 messages for a
 * subscriber that falls further behind, about 1% of them in this burst.
 * `BENCH_MQTT_URL` uses another broker instead. Needs `mosquitto` and
 * `mosquitto_pub` (Debian `mosquitto`, `mosquitto-clients`).
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

const MESSAGES = 100_000;
const METRICS_PER_MESSAGE = 10;
const PACED_RATE = 1000;
const PACED_SECONDS = 5;

function yaml(url: string, topic: string): string {
  return `
log: { level: warn }
admin: { enabled: false }
devices:
  bench_mqtt:
    type: mqtt
    config: { url: "${url}", topics: ["${topic}"], qos: 1, clean_session: true }
${probePipelineYaml(["bench_mqtt"])}`;
}

/** A `mosquitto_pub -l` process publishing each line written to it. */
function publisher(url: string, topic: string) {
  const { hostname, port } = new URL(url.replace(/^mqtt:/, "http:"));
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("mosquitto_pub", {
      args: ["-h", hostname, "-p", port || "1883", "-q", "1", "-t", topic, "-l"],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (error) {
    throw new Error("The mqtt scenario needs mosquitto_pub: apt-get install mosquitto-clients", {
      cause: error,
    });
  }
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  return {
    write: (text: string) => writer.write(enc.encode(text)),
    async close() {
      await writer.close().catch(() => {});
      await child.status;
    },
  };
}

/** A Mosquitto on a free port that queues without limit; `stop()` ends it by its pid. */
async function privateBroker(): Promise<{ url: string; stop(): Promise<void> }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  // In ./data: the bench task may write nowhere else.
  const dir = new URL("../../data/", import.meta.url).pathname;
  await Deno.mkdir(dir, { recursive: true });
  const conf = await Deno.makeTempFile({ dir, prefix: "bench-mosquitto-", suffix: ".conf" });
  await Deno.writeTextFile(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n`,
  );
  const child = new Deno.Command("mosquitto", {
    args: ["-c", conf],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await Deno.remove(conf).catch(() => {});
  };
  const end = Date.now() + 5000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { url: `mqtt://127.0.0.1:${port}`, stop };
    } catch (error) {
      if (Date.now() > end) {
        await stop();
        throw new Error("Cannot start mosquitto for the mqtt scenario", { cause: error });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Waits until `count()` reaches `total`, or stops growing for `quietMs`; returns it. */
async function settle(count: () => number, total: number, quietMs: number): Promise<number> {
  let last = -1, since = Date.now();
  while (count() < total) {
    if (count() !== last) {
      last = count();
      since = Date.now();
    } else if (Date.now() - since > quietMs) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  return count();
}

/** `mqtt`: samples/s from mosquitto_pub through Mosquitto and the mqtt device, and latency. */
export async function mqttScenario(): Promise<BenchResult> {
  const own = Deno.env.get("BENCH_MQTT_URL") ? undefined : await privateBroker();
  const url = Deno.env.get("BENCH_MQTT_URL") ?? own!.url;
  const topic = `th_bench/${crypto.randomUUID().slice(0, 8)}`;
  const registry = PluginRegistry.of([...BUILTIN_PLUGINS, probeHandler]);
  const loaded = await loadConfigText(yaml(url, topic), { file: "mqtt.yaml", registry, env: {} });
  const runtime = await Runtime.create(loaded, {
    logger: createLogger({ level: "warn" }),
    seed: 1,
  });
  const pub = publisher(url, topic);
  try {
    runtime.start();
    await until(() => runtime.devices()[0]?.state === "up", "the mqtt device up", 10_000);
    await new Promise((r) => setTimeout(r, 200)); // the SUBACK
    const message = (i: number) => {
      let text = "{";
      for (let m = 0; m < METRICS_PER_MESSAGE; m++) text += `${m ? "," : ""}"m${m}":${i + m / 10}`;
      return text + "}\n";
    };
    // Warm-up.
    let text = "";
    for (let i = 0; i < 2000; i++) text += message(i);
    await pub.write(text);
    await until(() => probe.samples >= 2000 * METRICS_PER_MESSAGE, "warm-up", 30_000);

    probe.reset(0);
    const started = performance.now();
    for (let i = 0; i < MESSAGES; i += 1000) {
      let chunk = "";
      for (let j = i; j < i + 1000; j++) chunk += message(j);
      await pub.write(chunk);
    }
    const total = MESSAGES * METRICS_PER_MESSAGE;
    const received = await settle(() => probe.samples, total, 3000);
    let lastAt = performance.now();
    if (received < total) lastAt -= 3000; // the quiet wait
    const seconds = (lastAt - started) / 1000;

    // Paced: one message per millisecond carrying its publish time.
    probe.reset(0);
    const paced = PACED_RATE * PACED_SECONDS;
    const pacedStart = performance.now();
    for (let n = 0; n < paced; n++) {
      const due = pacedStart + (n * 1000) / PACED_RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      await pub.write(`{"metric":"paced","value":${n},"ts":${Date.now()}}\n`);
    }
    await until(() => probe.samples >= paced, "paced messages", 30_000);
    const latency = probe.latency.summary();
    const device = runtime.devices()[0];
    const summary = await runtime.stop();
    return {
      scenario: "mqtt",
      description: "mosquitto_pub (QoS 1, JSON, 10 metrics per message) → Mosquitto → mqtt " +
        "device → memory broker → no-op handler; latency = publish → handler at 1,000 msg/s",
      samples_per_second: received / seconds,
      latency_ms: latency,
      offered_per_second: null,
      duration_s: seconds,
      samples: received,
      ...machine(),
      extra: {
        messages_per_second: Math.round(received / METRICS_PER_MESSAGE / seconds),
        samples_lost: total - received,
        metrics_per_message: METRICS_PER_MESSAGE,
        paced_messages_per_second: PACED_RATE,
        read_errors: device?.read_errors,
        samples_dropped: summary.samples_dropped,
      },
    };
  } finally {
    await pub.close();
    await runtime.stop().catch(() => {});
    await own?.stop();
  }
}

/**
 * Scenarios on the Redis broker, hub and processors as separate CLI
 * processes against the local Redis (`REDIS_URL`, default
 * redis://127.0.0.1:6379):
 *
 * - `redis`: simulated devices → hub → Redis → processor → no-op probe,
 *   1,000-sample tasks, as fast as it goes.
 * - `redis-single`: the same with one sample per task (tasks per second).
 * - `redis-latency`: 10,000 samples/s offered, small batches; p99 latency.
 *
 * Generated configuration files go to `./data/bench/`; processors write
 * their probe summary there on stop. Redis's CPU share comes from `INFO cpu`
 * over the measuring window.
 *
 * @module
 */
import { Redis } from "ioredis";
import { taskArgs } from "../../tests/_fixtures/cli.ts";
import { deleteKeys } from "../../tests/_fixtures/redis_server.ts";
import { type BenchResult, machine } from "../_harness.ts";
import type { ProbeSummary } from "./redis_probe.ts";

const REDIS_URL = Deno.env.get("REDIS_URL") ?? "redis://127.0.0.1:6379";
const ROOT = new URL("../../", import.meta.url).pathname;
const DATA = `${ROOT}data/bench`;
const PROBE = new URL("./redis_probe.ts", import.meta.url).href;

/** Options of one Redis run. */
export interface RedisBenchOptions {
  scenario: string;
  description: string;
  /** Samples per second offered in total; `null` = more than the pipeline takes. */
  offered: number | null;
  devices: number;
  tick: string;
  processors: number;
  workers: number;
  prefetch: number;
  maxSamples: number;
  maxWait: string;
  /** Most queued tasks in Redis (backpressure on the hub). */
  capacity: number;
  warmupMs: number;
  measureMs: number;
  /**
   * The broker's connection lines of its `config:` block (default: `url`
   * of the local Redis and a task key under the run's prefix).
   */
  target?: (prefix: string) => string;
  /** Extra lines of the broker's `config:` block. */
  brokerExtra?: string;
  /**
   * Redis server processes to measure CPU of, by pid (`/proc/<pid>/stat`),
   * instead of the local Redis's `INFO cpu`; the keys name them in results.
   */
  servers?: Record<string, number>;
}

function config(
  o: RedisBenchOptions,
  prefix: string,
  window: { from: number; to: number },
) {
  // Three metrics per device (the simulated default); rate is per metric.
  const total = o.offered ?? 3_000_000;
  const rate = total / o.devices / 3;
  const names = Array.from({ length: o.devices }, (_, i) => `sim_${i}`);
  const devices = names.map((n) =>
    `  ${n}:\n    type: simulated\n    config: { rate: ${rate}, tick: ${o.tick} }`
  ).join("\n");
  return (file: string) => `
plugins: [${PROBE}]
log: { level: warn, format: json }
admin: { enabled: false }
devices:
${devices}
brokers:
  fleet:
    type: redis
    config:
${
    (o.target?.(prefix) ??
      `url: "${REDIS_URL}"\ntask_key: "${prefix}:task:{id}"`).split("\n").map((l) => `      ${l}`)
      .join("\n")
  }
      prefix: ${prefix}
      capacity: ${o.capacity}${o.brokerExtra ? `\n      ${o.brokerExtra}` : ""}
handlers:
  probe:
    type: bench_redis_probe
    config: { file: "${file}", from: ${window.from}, to: ${window.to} }
pipelines:
  bench:
    from: [${names.join(", ")}]
    via: fleet
    handlers: [probe]
    batch: { max_samples: ${o.maxSamples}, max_wait: ${o.maxWait} }
    hub_queue: { capacity: ${Math.max(100_000, o.maxSamples * 20)}, overflow: block }
    workers: ${o.workers}
    prefetch: ${o.prefetch}
`;
}

async function spawnRole(
  role: string,
  path: string,
): Promise<Deno.ChildProcess> {
  return new Deno.Command(Deno.execPath(), {
    args: [...await taskArgs("run"), "--role", role, "--config", path],
    cwd: ROOT,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const field = (name: string) => Number(info.match(new RegExp(`${name}:([\\d.]+)`))?.[1] ?? 0);
  return field("used_cpu_sys") + field("used_cpu_user");
}

/** Output of a short command (`ps`, `cat`), or "" when it fails. */
async function output(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "";
  }
}

/** CPU seconds a process has used so far (`ps -o times`; /proc needs --allow-all in Deno). */
async function cpuSeconds(pid: number): Promise<number> {
  return Number(await output("ps", ["-o", "times=", "-p", String(pid)]) || NaN);
}

async function processCpu(pids: number[]): Promise<number[]> {
  return await Promise.all(pids.map(cpuSeconds));
}

/**
 * CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`
 * (ticks of 1/100 s; read with `cat`, as Deno wants --allow-all for /proc).
 */
export async function procCpuSeconds(pid: number): Promise<number> {
  const stat = await output("cat", [`/proc/${pid}/stat`]);
  // Fields after the command name (which may hold spaces) start at ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds of each named server process. */
async function serverCpu(servers: Record<string, number>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(servers)) out[name] = await procCpuSeconds(pid);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one measurement with a hub and `processors` processor processes. */
export async function runRedis(o: RedisBenchOptions): Promise<BenchResult> {
  await Deno.mkdir(DATA, { recursive: true });
  const prefix = `bench-${o.scenario}-${crypto.randomUUID().slice(0, 6)}`;
  const redis = o.servers ? undefined : new Redis(REDIS_URL);
  const started = Date.now() + 3000; // processes take about this long to start
  const window = {
    from: started + o.warmupMs,
    to: started + o.warmupMs + o.measureMs,
  };
  const yaml = config(o, prefix, window);
  const files: string[] = [];
  const processors: Deno.ChildProcess[] = [];
  for (let i = 0; i < o.processors; i++) {
    const file = `${DATA}/${prefix}-probe-${i}.json`;
    const path = `${DATA}/${prefix}-processor-${i}.yaml`;
    await Deno.writeTextFile(path, yaml(file));
    files.push(file);
    processors.push(await spawnRole("processor", path));
  }
  const hubPath = `${DATA}/${prefix}-hub.yaml`;
  await Deno.writeTextFile(hubPath, yaml(`${DATA}/${prefix}-unused.json`));
  const hub = await spawnRole("hub", hubPath);
  try {
    await sleep(Math.max(0, window.from - Date.now()));
    const pids = [hub.pid, ...processors.map((p) => p.pid)];
    const cpuBefore = redis ? await redisCpuSeconds(redis) : 0;
    const serversBefore = await serverCpu(o.servers ?? {});
    const procBefore = await processCpu(pids);
    await sleep(Math.max(0, window.to - Date.now()));
    const cpuAfter = redis ? await redisCpuSeconds(redis) : 0;
    const serversAfter = await serverCpu(o.servers ?? {});
    const procAfter = await processCpu(pids);
    const share = (i: number) =>
      Math.round(
        ((procAfter[i]! - procBefore[i]!) / (o.measureMs / 1000)) * 100,
      );
    const redisInfo = await redis?.info("server");
    const backlog = await redis?.llen(`${prefix}:tasks`);
    hub.kill("SIGTERM");
    await hub.status;
    for (const p of processors) p.kill("SIGTERM");
    await Promise.all(processors.map((p) => p.status));
    const summaries: ProbeSummary[] = [];
    for (const file of files) {
      summaries.push(JSON.parse(await Deno.readTextFile(file)) as ProbeSummary);
    }
    const seconds = o.measureMs / 1000;
    const samples = summaries.reduce((n, s) => n + s.samples, 0);
    const tasks = summaries.reduce((n, s) => n + s.tasks, 0);
    // Per server: its share of a core, and its CPU per 1,000 samples (the figure
    // that says how a master's load falls as masters are added).
    const servers = Object.fromEntries(
      Object.keys(o.servers ?? {}).map((name) => {
        const used = serversAfter[name]! - serversBefore[name]!;
        return [name, {
          cpu_percent: Math.round((used / seconds) * 100),
          cpu_us_per_1k_samples: samples > 0 ? Math.round((used / samples) * 1e9) : null,
        }];
      }),
    );
    return {
      scenario: o.scenario,
      description: o.description,
      samples_per_second: samples / seconds,
      // With several processors the worst process's figures are reported.
      latency_ms: {
        p50: Math.max(...summaries.map((s) => s.p50)),
        p99: Math.max(...summaries.map((s) => s.p99)),
        max: Math.max(...summaries.map((s) => s.max)),
      },
      offered_per_second: o.offered,
      duration_s: seconds,
      samples,
      ...machine(),
      extra: {
        processors: o.processors,
        workers: o.workers,
        prefetch: o.prefetch,
        max_samples: o.maxSamples,
        max_wait: o.maxWait,
        tasks_seen_by_probe: tasks,
        ...(redis
          ? { redis_cpu_percent: Math.round(((cpuAfter - cpuBefore) / seconds) * 100) }
          : { servers }),
        hub_cpu_percent: share(0),
        processor_cpu_percent: processors.map((_, i) => share(i + 1)),
        load_average_1m: Number(
          (await output("cat", ["/proc/loadavg"])).split(" ")[0],
        ),
        redis_version: redisInfo?.match(/redis_version:(\S+)/)?.[1],
        queue_backlog_after: backlog,
      },
    };
  } finally {
    for (const child of [hub, ...processors]) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }
    if (redis) {
      await deleteKeys(prefix, REDIS_URL);
      redis.disconnect();
    }
  }
}

/**
 * The `redis` scenario's load (also `redis-cluster`'s and `redis-wait`'s):
 * 1,000-sample tasks, as fast as it goes.
 */
export const BATCHED: Omit<RedisBenchOptions, "scenario" | "description"> = {
  offered: null,
  devices: 4,
  tick: "10ms",
  processors: 1,
  workers: 4,
  prefetch: 8,
  maxSamples: 1000,
  maxWait: "20ms",
  capacity: 100,
  warmupMs: 2000,
  measureMs: 8000,
};

/** The `redis-latency` scenario's load (also `redis-wait`'s): 10,000 samples/s in small batches. */
export const PACED: Omit<RedisBenchOptions, "scenario" | "description"> = {
  offered: 10_000,
  devices: 2,
  tick: "1ms",
  processors: 1,
  workers: 2,
  prefetch: 4,
  maxSamples: 100,
  maxWait: "2ms",
  capacity: 1000,
  warmupMs: 2000,
  measureMs: 8000,
};

/** `redis`: batched throughput, hub and processor as separate processes. */
export function redisBatched(): Promise<BenchResult> {
  return runRedis({
    scenario: "redis",
    description:
      "simulated → hub → Redis → processor → no-op, 1,000-sample tasks, separate processes",
    ...BATCHED,
  });
}

/** `redis-single`: tasks per second with one sample per task. */
export function redisSingle(): Promise<BenchResult> {
  return runRedis({
    scenario: "redis-single",
    description: "one sample per task through Redis, hub and processor as separate processes",
    offered: 200_000,
    devices: 2,
    tick: "5ms",
    processors: 1,
    workers: 4,
    prefetch: 128,
    maxSamples: 1,
    maxWait: "1ms",
    capacity: 5000,
    warmupMs: 2000,
    measureMs: 8000,
  });
}

/** `redis-latency`: p99 at 10,000 samples/s offered. */
export function redisLatency(): Promise<BenchResult> {
  return runRedis({
    scenario: "redis-latency",
    description: "10,000 samples/s offered through Redis; latency from sample to handler",
    ...PACED,
  });
}

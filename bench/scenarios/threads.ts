/**
 * Scenario `threads`: how a processor's throughput grows with `threads:`.
 * A sqlite broker file is filled with tasks of 1,000 samples (as the gateway
 * writes them); then a processor (`deno task run --role processor`, its
 * permissions exactly) drains it through a handler chain without a
 * database, once with `threads: 1` and once with `threads: 2`, back to back
 * on the same backlog. Reports samples/s of each, their ratio,
 * and the load average before each run (the machine is shared).
 *
 * The chain is the default chain's work without its database: `analyze`
 * (calibration, unit conversion, range checks), `anomaly` with `store: false`
 * (z-score, stuck and silent sensors per series), then `discard`.
 * THREADS_CHAIN=discard measures the bare no-op chain (broker and decoding
 * only); THREADS_TASKS sets the backlog (default 12,000 tasks, about 450 MB of file).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { Sample } from "../../core/sample.ts";
import { newTaskId, type Task } from "../../core/task.ts";
import { testContext } from "../../core/testing.ts";
import redis from "../../plugins/redis/mod.ts";
import sqlite from "../../plugins/sqlite/mod.ts";
import { Redis } from "ioredis";
import { type BenchResult, machine } from "../_harness.ts";

const DIR = `${Deno.cwd()}/data/bench`;
const FILE = `${DIR}/threads.db`;
const PIPELINE = "bench";
const TASKS = Number(Deno.env.get("THREADS_TASKS") ?? 12000);
const PER_TASK = Number(Deno.env.get("THREADS_PER_TASK") ?? 1000);
/** `sqlite` (default: the broker of the embedded default) or `redis` (the local server). */
const BROKER = Deno.env.get("THREADS_BROKER") === "redis" ? "redis" : "sqlite";
/** Tasks each worker reserves at once (the pipeline's `prefetch`). */
const PREFETCH = Number(Deno.env.get("THREADS_PREFETCH") ?? 128);
/** A fresh Redis key prefix per run. */
let redisPrefix = "";
const CHAIN = Deno.env.get("THREADS_CHAIN") === "discard"
  ? ["drop"]
  : ["calibrate", "detect", "drop"];

async function removeFile(): Promise<void> {
  for (const suffix of ["", "-wal", "-shm", "-owners"]) {
    await Deno.remove(FILE + suffix, { recursive: true }).catch(() => {});
  }
}

function tasks(count: number, start: number): Task[] {
  const now = Date.now();
  return Array.from({ length: count }, (_, t) => {
    const samples: Sample[] = Array.from({ length: PER_TASK }, (_, i) => ({
      device: `dev_${i % 20}`,
      metric: i % 2 === 0 ? "temperature" : "pressure",
      value: i % 2 === 0 ? 20 + (i % 50) / 10 : 101 + (i % 30) / 10,
      unit: i % 2 === 0 ? "C" : "kPa",
      ts: now - 60_000 + (start + t) * 10 + (i % 10),
      seq: (start + t) * PER_TASK + i,
    }));
    return {
      id: newTaskId(now),
      type: "telemetry.analyze",
      payload: { samples },
      attempts: 0,
      created_at: now,
      priority: "normal",
      pipeline: PIPELINE,
      checked: true,
    };
  });
}

/** A broker instance in this process, to fill the backlog (and, for Redis, watch it). */
async function openBroker() {
  const ctx = testContext({ dataDir: Deno.cwd() });
  return BROKER === "redis"
    ? await redis.create(redis.config.parse({ prefix: redisPrefix }), ctx)
    : await sqlite.create(
      sqlite.config.parse({ path: FILE, capacity: TASKS + 1, synchronous: "normal" }),
      ctx,
    );
}

/** Fills a fresh broker with the backlog. */
async function fill(): Promise<void> {
  await removeFile();
  await Deno.mkdir(DIR, { recursive: true });
  redisPrefix = `bench-threads-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const broker = await openBroker();
  try {
    for (let i = 0; i < TASKS; i += 100) await broker.enqueue(tasks(Math.min(100, TASKS - i), i));
  } finally {
    await broker.close();
  }
}

/** Removes what a run left: the sqlite file, or the run's Redis keys. */
async function cleanUp(): Promise<void> {
  await removeFile();
  if (BROKER !== "redis") return;
  const client = new Redis();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 1000);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    client.disconnect();
  }
}

/**
 * Tasks still queued, read without joining the consumers: the sqlite file
 * read-only (a broker instance would take part in leases and writes), or a
 * Redis broker instance's depth.
 */
async function watchQueue(): Promise<{ queued(): Promise<number>; close(): Promise<void> }> {
  if (BROKER === "redis") {
    const broker = await openBroker();
    return { queued: async () => (await broker.depth()).queued, close: () => broker.close() };
  }
  const db = new DatabaseSync(FILE, { readOnly: true });
  const statement = db.prepare("SELECT count(*) AS n FROM tasks WHERE state = 'queued'");
  return {
    queued: () => Promise.resolve(Number((statement.get() as { n: number }).n)),
    close: () => Promise.resolve(db.close()),
  };
}

function yaml(threads: number, port: number): string {
  return `
log: { level: warn }
admin: { listen: "127.0.0.1:${port}" }
threads: ${threads}
brokers:
  queue: ${
    BROKER === "redis"
      ? `{ type: redis, config: { prefix: ${redisPrefix} } }`
      : `{ type: sqlite, config: { path: ${JSON.stringify(FILE)}, capacity: ${TASKS + 1} } }`
  }
handlers:
  calibrate:
    type: analyze
    config:
      calibrations: [{ metric: pressure, to: bar }]
      ranges: [{ metric: temperature, min: -40, max: 150 }]
  detect: { type: anomaly, config: { store: false } }
  drop: { type: discard }
pipelines:
  ${PIPELINE}: { via: queue, handlers: [${CHAIN.join(", ")}], workers: 2, prefetch: ${PREFETCH} }
`;
}

interface Drain {
  threads: number;
  samples_per_second: number;
  seconds: number;
  /** CPU the processor process used meanwhile (every isolate), in cores. */
  cores_used: number;
  /** Its CPU time per sample: the same at 1 and 2 threads when threads cost nothing. */
  cpu_us_per_sample: number;
  load_before: number;
}

/** CPU seconds (user + system) a process has used so far, every thread included. */
async function cpuSeconds(pid: number): Promise<number> {
  // Deno asks for --allow-all to read /proc/<pid>; the bench may run programs.
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/stat`] }).output();
  const stat = new TextDecoder().decode(out.stdout);
  // Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

/** A port nobody listens on now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Whether the processor's /readyz says every isolate (thread) is ready. */
async function ready(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`);
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false; // not listening yet
  }
}

/** The `deno run …` arguments of `deno task run`, so the processor has exactly its permissions. */
async function runTaskArgs(): Promise<string[]> {
  const json = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  return (json.tasks.run.command as string).split(/\s+/).slice(1);
}

/**
 * Drains the backlog with a processor process running `threads` isolates,
 * watched from this process through the broker: the rate is taken
 * while the queue goes from 90% to 10% of the backlog, once every isolate
 * is ready, so start-up and the tail are left out.
 */
async function drain(threads: number): Promise<Drain> {
  await fill();
  const config = `${DIR}/threads.yaml`;
  const port = freePort();
  await Deno.writeTextFile(config, yaml(threads, port));
  const load = Number((Deno.loadavg()[0] ?? 0).toFixed(2));
  const queue = await watchQueue();
  const child = new Deno.Command(Deno.execPath(), {
    args: [...await runTaskArgs(), "--role", "processor", "--config", config],
    cwd: new URL("../..", import.meta.url).pathname,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    const left = async (share: number) => await queue.queued() <= TASKS * share;
    // Every isolate runs before the window opens: start-up (module loading, compiling) is
    // no part of the rate.
    while (!await ready(port)) await new Promise((r) => setTimeout(r, 50));
    // Polled every 20 ms, not harder: the bench shares the machine with what it measures.
    const until = async (share: number) => {
      while (!await left(share)) await new Promise((r) => setTimeout(r, 20));
    };
    await until(0.9);
    const from = {
      at: performance.now(),
      n: await queue.queued(),
      cpu: await cpuSeconds(child.pid),
    };
    await until(0.1);
    const to = { at: performance.now(), n: await queue.queued(), cpu: await cpuSeconds(child.pid) };
    const seconds = (to.at - from.at) / 1000;
    const samples = (from.n - to.n) * PER_TASK;
    return {
      threads,
      samples_per_second: Math.round(samples / seconds),
      seconds: Number(seconds.toFixed(2)),
      cores_used: Number(((to.cpu - from.cpu) / seconds).toFixed(2)),
      cpu_us_per_sample: Number(((to.cpu - from.cpu) * 1e6 / samples).toFixed(3)),
      load_before: load,
    };
  } finally {
    await queue.close();
    child.kill("SIGTERM");
    await child.status;
    await cleanUp();
  }
}

/**
 * What handing a 1,000-sample task to another isolate would cost the main
 * one, against what decoding it costs: why an in-process (memory) broker's
 * pipelines stay on the main isolate.
 */
function handoffCost(): { json_parse_us: number; structured_clone_us: number } {
  const [task] = tasks(1, 0);
  const text = JSON.stringify(task);
  const time = (f: () => unknown) => {
    for (let i = 0; i < 100; i++) f();
    const start = performance.now();
    for (let i = 0; i < 1000; i++) f();
    return Math.round(performance.now() - start); // ms per 1,000 = µs per task
  };
  return {
    json_parse_us: time(() => JSON.parse(text)),
    structured_clone_us: time(() => structuredClone(task)),
  };
}

/** The mean rate of the runs with `threads` isolates. */
function mean(runs: readonly Drain[], threads: number): number {
  const rates = runs.filter((r) => r.threads === threads).map((r) => r.samples_per_second);
  return Math.round(rates.reduce((a, b) => a + b, 0) / rates.length);
}

/**
 * `threads`: a processor draining the same backlog with threads: 1 and 2, in
 * the order 1, 2, 2, 1 so that a load change on the shared machine during
 * the scenario weighs on both alike.
 */
export async function threadsScenario(): Promise<BenchResult> {
  const runs: Drain[] = [];
  for (const threads of [1, 2, 2, 1]) runs.push(await drain(threads));
  const one = mean(runs, 1);
  const two = mean(runs, 2);
  const ratio = Number((two / one).toFixed(2));
  return {
    scenario: "threads",
    description: `${BROKER} backlog → processor → ${CHAIN.join(" → ")} (no database); ` +
      `threads: 2 (figure) against threads: 1 on the same backlog: ratio ${ratio}`,
    samples_per_second: two,
    latency_ms: { p50: 0, p99: 0, max: 0 },
    offered_per_second: null,
    duration_s: runs.reduce((s, r) => s + r.seconds, 0),
    samples: Math.round(TASKS * PER_TASK * 0.8 * runs.length),
    ...machine(),
    extra: {
      broker: BROKER,
      chain: CHAIN,
      prefetch: PREFETCH,
      tasks: TASKS,
      samples_per_task: PER_TASK,
      threads_1_samples_per_second: one,
      threads_2_samples_per_second: two,
      ratio_2_to_1: ratio,
      runs,
      per_task_handoff: handoffCost(),
      note: "Each rate is taken while the queue goes from 90% to 10% of the backlog, read " +
        "from the broker every 20 ms by the bench process; load_before is the one-minute " +
        "load average before each run",
    },
  };
}

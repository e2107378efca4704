/**
 * The whole chain as a fleet runs it, in separate processes against the
 * local Redis and PostgreSQL: simulated devices → hub → Redis → processor
 * running `analyze → anomaly → aggregate → store` into a fresh PostgreSQL
 * database, then the probe (so latency includes the database write).
 *
 * - `fleet`: 20 devices × 3 metrics, 1,000-sample tasks, 8 workers,
 *   3,000,000 samples as fast as they go; samples/s from the first to the
 *   last of them reaching the end of the chain.
 * - `fleet-latency`: the same paced at 10,000 samples/s, devices ticking
 *   every 2 ms, `max_wait: 5ms` (as telemetry.yaml; `BENCH_FLEET_MAX_WAIT`
 *   overrides it).
 *
 * Both report where the time goes: the runtime's stage and handler
 * histograms (scraped from each process's `/metrics` before and after the
 * window, see bench/_hops.ts) and CPU per sample of the hub, the
 * processor, Redis and PostgreSQL (its backends of the bench database, and
 * its background processes) from `/proc/<pid>/stat`. Every run uses a
 * fresh Redis key prefix and a fresh database, dropped afterwards.
 *
 * `REDIS_URL` (default redis://127.0.0.1:6379) and `BENCH_POSTGRES_URL`
 * (default postgres://postgres@127.0.0.1:5432/postgres, a database the bench
 * may create databases from) say where the servers are.
 *
 * @module
 */
import { Redis } from "ioredis";
import postgres from "postgres";
import { taskArgs } from "../../tests/_fixtures/cli.ts";
import { deleteKeys } from "../../tests/_fixtures/redis_server.ts";
import { freePort } from "../../tests/_fixtures/tools.ts";
import { type BenchResult, machine, until } from "../_harness.ts";
import {
  breakdown,
  cpuSeconds,
  cpuShare,
  loadAverage,
  processedBetween,
  type Scrape,
  scrape,
} from "../_hops.ts";
import type { ProbeSummary } from "./redis_probe.ts";

const REDIS_URL = Deno.env.get("REDIS_URL") ?? "redis://127.0.0.1:6379";
const PG_ADMIN_URL = Deno.env.get("BENCH_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/postgres";
const ROOT = new URL("../../", import.meta.url).pathname;
const DATA = `${ROOT}data/bench`;
const PROBE = new URL("./redis_probe.ts", import.meta.url).href;
/** The chain, as in telemetry.yaml without the alert and digest handlers. */
export const CHAIN = ["analyze", "anomaly", "aggregate", "store"] as const;

/** Options of one fleet run. */
export interface FleetOptions {
  scenario: string;
  description: string;
  /** Samples per second offered in total; `null` = more than the pipeline takes. */
  offered: number | null;
  devices: number;
  tick: string;
  workers: number;
  /** `undefined`: the pipeline default. */
  prefetch?: number;
  maxSamples?: number;
  maxWait?: string;
  /** Most queued tasks in Redis (backpressure on the hub). */
  capacity: number;
  /** As-fast-as-possible runs: the samples the devices emit and the probe waits for. */
  samples?: number;
  /** Paced runs: warm-up, then the measuring window. */
  warmupMs?: number;
  measureMs?: number;
}

/** The `database URL` of database `name` on the server of {@link PG_ADMIN_URL}. */
function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.href;
}

/** The chain's handler blocks, shared with the `embedded-chain` scenario's expectations. */
function handlersYaml(url: string): string {
  return `
  analyze:
    type: analyze
    config:
      calibrations:
        - { metric: pressure, to: bar }
      ranges:
        - { metric: temperature, min: -40, max: 150 }
        - { metric: humidity, min: 0, max: 100 }
  anomaly: { type: anomaly, config: { url: "${url}" } }
  aggregate: { type: aggregate, config: { url: "${url}", windows: [10s, 1m, 1h] } }
  store: { type: store, config: { url: "${url}" } }`;
}

function config(
  o: FleetOptions,
  prefix: string,
  url: string,
  probe: { file: string; from: number; to: number; samples?: number },
) {
  const total = o.offered ?? 3_000_000;
  const rate = total / o.devices / 3; // three metrics per device
  const limit = o.samples === undefined ? "" : `, limit: ${Math.ceil(o.samples / o.devices / 3)}`;
  const names = Array.from({ length: o.devices }, (_, i) => `sim_${i}`);
  const devices = names.map((n) =>
    `  ${n}:\n    type: simulated\n    config: { rate: ${rate}, tick: ${o.tick}${limit} }`
  ).join("\n");
  const batch = [
    o.maxSamples === undefined ? "" : `max_samples: ${o.maxSamples}`,
    o.maxWait === undefined ? "" : `max_wait: ${o.maxWait}`,
  ].filter(Boolean).join(", ");
  return (admin: number) => `
plugins: [${PROBE}]
log: { level: warn, format: json }
admin: { listen: "127.0.0.1:${admin}" }
devices:
${devices}
brokers:
  fleet:
    type: redis
    config:
      url: "${REDIS_URL}"
      prefix: ${prefix}
      task_key: "${prefix}:task:{id}"
      capacity: ${o.capacity}
handlers:${handlersYaml(url)}
  probe:
    type: bench_redis_probe
    config: ${JSON.stringify(probe)}
pipelines:
  bench:
    from: [${names.join(", ")}]
    via: fleet
    handlers: [${CHAIN.join(", ")}, probe]
${batch ? `    batch: { ${batch} }\n` : ""}    hub_queue: { capacity: 100000, overflow: block }
    workers: ${o.workers}
${o.prefetch === undefined ? "" : `    prefetch: ${o.prefetch}\n`}`;
}

/** `BENCH_CPU_PROF=<dir>`: each process writes a V8 CPU profile there when it stops. */
const CPU_PROF = Deno.env.get("BENCH_CPU_PROF");

async function spawnRole(role: string, path: string): Promise<Deno.ChildProcess> {
  const [run, ...rest] = await taskArgs("run");
  const prof = CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROF}/${role}`] : [];
  return new Deno.Command(Deno.execPath(), {
    args: [run!, ...prof, ...rest, "--role", role, "--config", path],
    cwd: ROOT,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

/** The pids whose CPU a run reports, by process. */
interface Pids {
  hub: number;
  processor: number;
  redis: number;
  /** PostgreSQL backends serving the bench database. */
  postgres_backends: number[];
  /** PostgreSQL's own processes (WAL writer, checkpointer, …), shared with other databases. */
  postgres_background: number[];
}

async function postgresPids(sql: postgres.Sql, db: string) {
  const rows = await sql<{ pid: number; backend_type: string; datname: string | null }[]>`
    SELECT pid, backend_type, datname FROM pg_stat_activity`;
  return {
    backends: rows.filter((r) => r.datname === db && r.backend_type === "client backend")
      .map((r) => r.pid),
    background: rows.filter((r) => r.backend_type !== "client backend").map((r) => r.pid),
  };
}

/** Everything read at one edge of the measuring window. */
interface Snapshot {
  at: number;
  cpu: number[];
  hub: Scrape;
  processor: Scrape;
}

async function snapshot(pids: number[], ports: { hub: number; processor: number }) {
  const [cpu, hub, processor] = await Promise.all([
    cpuSeconds(pids),
    scrape(`http://127.0.0.1:${ports.hub}/metrics`),
    scrape(`http://127.0.0.1:${ports.processor}/metrics`),
  ]);
  return { at: performance.now(), cpu, hub, processor } satisfies Snapshot;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (xs: number[]) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);

/** Runs one fleet measurement. */
export async function runFleet(o: FleetOptions): Promise<BenchResult> {
  await Deno.mkdir(DATA, { recursive: true });
  const id = crypto.randomUUID().slice(0, 6);
  const prefix = `bench-${o.scenario}-${id}`;
  const db = `bench_${o.scenario.replaceAll("-", "_")}_${id}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  const redis = new Redis(REDIS_URL);
  await admin.unsafe(`CREATE DATABASE ${db}`);
  const children: Deno.ChildProcess[] = [];
  try {
    const ports = { hub: freePort(), processor: freePort() };
    const file = `${DATA}/${prefix}-probe.json`;
    const paced = o.samples === undefined;
    const started = Date.now() + 3000; // processes take about this long to start
    const window = paced
      ? { from: started + (o.warmupMs ?? 2000), to: started + (o.warmupMs ?? 2000) + o.measureMs! }
      : { from: 0, to: 8.64e15 };
    const yaml = config(o, prefix, databaseUrl(db), {
      file,
      ...window,
      ...(o.samples === undefined ? {} : { samples: o.samples }),
    });
    const paths = { hub: `${DATA}/${prefix}-hub.yaml`, processor: `${DATA}/${prefix}-proc.yaml` };
    await Deno.writeTextFile(paths.processor, yaml(ports.processor));
    await Deno.writeTextFile(paths.hub, yaml(ports.hub));
    const processor = await spawnRole("processor", paths.processor);
    children.push(processor);
    await until(
      () => fetch(`http://127.0.0.1:${ports.processor}/readyz`).then((r) => r.ok, () => false),
      "the processor to be ready",
      60_000,
    );
    const hub = await spawnRole("hub", paths.hub);
    children.push(hub);
    const redisPid = Number((await redis.info("server")).match(/process_id:(\d+)/)?.[1]);
    await until(
      () => fetch(`http://127.0.0.1:${ports.hub}/healthz`).then((r) => r.ok, () => false),
      "the hub to be up",
      60_000,
    );

    let before: Snapshot;
    let pids: Pids;
    const pidList = (p: Pids) => [
      p.hub,
      p.processor,
      p.redis,
      ...p.postgres_backends,
      ...p.postgres_background,
    ];
    const readPids = async (): Promise<Pids> => {
      const pg = await postgresPids(admin, db);
      return {
        hub: hub.pid,
        processor: processor.pid,
        redis: redisPid,
        postgres_backends: pg.backends,
        postgres_background: pg.background,
      };
    };
    if (paced) {
      await sleep(Math.max(0, window.from - Date.now()));
      pids = await readPids();
      before = await snapshot(pidList(pids), ports);
    } else {
      // From the first sample through the chain: start-up (compiling, connecting) is left out.
      let first: Scrape | undefined;
      await until(
        async () => {
          first = await scrape(`http://127.0.0.1:${ports.processor}/metrics`);
          return (first.get("telemetry_samples_processed_total")?.count ?? 0) > 0;
        },
        "the first samples through the chain",
        60_000,
      );
      pids = await readPids();
      before = await snapshot(pidList(pids), ports);
    }
    const loadDuring: number[] = [];
    const loadTimer = setInterval(() => loadAverage().then((l) => loadDuring.push(l)), 1000);
    try {
      if (paced) await sleep(Math.max(0, window.to - Date.now()));
      else {
        await until(
          () => Deno.stat(file).then(() => true, () => false),
          `${o.samples} samples through the chain`,
          600_000,
        );
      }
    } finally {
      clearInterval(loadTimer);
    }
    // Pool connections open as they are needed: backends that appeared in the window count
    // from their start.
    const fresh = (await postgresPids(admin, db)).backends
      .filter((p) => !pids.postgres_backends.includes(p));
    const after = await snapshot([...pidList(pids), ...fresh], ports);
    before.cpu.push(...fresh.map(() => 0));
    pids.postgres_backends.push(...fresh);
    const backlog = await redis.llen(`${prefix}:tasks`);
    hub.kill("SIGTERM");
    await hub.status;
    processor.kill("SIGTERM");
    await processor.status;
    const probe = JSON.parse(await Deno.readTextFile(file)) as ProbeSummary;
    // Statistics reach pg_stat_* once the backends report them (at the latest when they end).
    const totals = await databaseTotals(databaseUrl(db), db);

    const seconds = paced ? o.measureMs! / 1000 : (probe.last - probe.first) / 1000;
    const processed = processedBetween(before.processor, after.processor);
    const cpu = after.cpu.map((c, i) => c - before.cpu[i]!);
    const n = { hub: 1, processor: 1, redis: 1, backends: pids.postgres_backends.length };
    const wall = (after.at - before.at) / 1000;
    const [hubCpu, procCpu, redisCpu] = cpu;
    const backgroundFrom = 3 + n.backends - fresh.length;
    const backendCpu = sum([
      ...cpu.slice(3, backgroundFrom),
      ...cpu.slice(cpu.length - fresh.length),
    ]);
    const backgroundCpu = sum(cpu.slice(backgroundFrom, cpu.length - fresh.length));
    const cpuOf = (s: number) => cpuShare(s, wall, processed);
    return {
      scenario: o.scenario,
      description: o.description,
      samples_per_second: probe.samples / seconds,
      latency_ms: { p50: probe.p50, p99: probe.p99, max: probe.max },
      offered_per_second: o.offered,
      duration_s: seconds,
      samples: probe.samples,
      ...machine(),
      extra: {
        devices: o.devices,
        tick: o.tick,
        workers: o.workers,
        prefetch: o.prefetch ?? "default",
        max_samples: o.maxSamples ?? "default",
        max_wait: o.maxWait ?? "default",
        chain: [...CHAIN],
        tasks_seen_by_probe: probe.tasks,
        rows_stored: totals.stored,
        // Whole run, start-up included: transactions committed and aggregate rows written.
        database_commits: totals.commits,
        aggregate_row_writes: totals.aggregate_writes,
        samples_processed_in_window: processed,
        queue_backlog_after: backlog,
        load_average_during: loadDuring,
        // Mean time per observation (batch, task or sample) and per sample of each hop.
        hops: breakdown(
          [before.hub, after.hub],
          [before.processor, after.processor],
          CHAIN,
          processed,
        ),
        cpu: {
          hub: cpuOf(hubCpu!),
          processor: cpuOf(procCpu!),
          redis: cpuOf(redisCpu!),
          postgres_backends: { processes: n.backends, ...cpuOf(backendCpu) },
          postgres_background: cpuOf(backgroundCpu),
        },
      },
    };
  } finally {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }
    for (const entry of ["hub.yaml", "proc.yaml", "probe.json"]) {
      await Deno.remove(`${DATA}/${prefix}-${entry}`).catch(() => {});
    }
    await deleteKeys(prefix, REDIS_URL);
    redis.disconnect();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}

/** What the run left in the database: rows stored, commits and aggregate row writes. */
async function databaseTotals(url: string, db: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ stored: number; commits: number; aggregate_writes: number }[]>`
      SELECT (SELECT count(*)::float8 FROM public.telemetry_samples) AS stored,
        (SELECT xact_commit::float8 FROM pg_stat_database WHERE datname = ${db}) AS commits,
        (SELECT (n_tup_ins + n_tup_upd)::float8 FROM pg_stat_user_tables
          WHERE relname = 'aggregates') AS aggregate_writes`;
    return row ?? { stored: 0, commits: 0, aggregate_writes: 0 };
  } finally {
    await sql.end();
  }
}

/** `fleet`: 3,000,000 samples through the whole chain, as fast as they go. */
export function fleet(): Promise<BenchResult> {
  return runFleet({
    scenario: "fleet",
    description: "hub → Redis → processor (analyze, anomaly, aggregate, store) → PostgreSQL, " +
      "20 devices × 3 metrics, 3,000,000 samples as fast as they go, separate processes",
    offered: null,
    devices: 20,
    tick: "10ms",
    workers: 8,
    maxSamples: 1000,
    maxWait: "20ms",
    capacity: 100,
    samples: 3_000_000,
  });
}

/** `fleet-latency`: the whole chain at 10,000 samples/s. */
export function fleetLatency(): Promise<BenchResult> {
  return runFleet({
    scenario: "fleet-latency",
    description: "the fleet chain paced at 10,000 samples/s (devices tick every 2 ms), " +
      "max_wait 5ms; latency from sample timestamp to after the database write",
    offered: 10_000,
    devices: 20,
    tick: "2ms",
    workers: 8,
    maxWait: Deno.env.get("BENCH_FLEET_MAX_WAIT") ?? "5ms",
    capacity: 1000,
    warmupMs: 3000,
    measureMs: 10_000,
  });
}

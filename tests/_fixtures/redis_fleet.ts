/**
 * Hub and processor processes sharing a Redis broker, run through the CLI
 * with exactly the permissions of `deno task run`.
 *
 * @module
 */
import { collect, spawnTask } from "./cli.ts";
import { client, REDIS_URL } from "./redis_server.ts";

const FIXTURES = new URL(".", import.meta.url).href;

/** Options of one fleet configuration. */
export interface FleetOptions {
  /** Key prefix of the broker (and of the count hash). */
  prefix: string;
  /** Samples the hub emits in all. */
  samples: number;
  /** Samples per emitted batch and pause between batches. */
  emitBatch?: number;
  every?: string;
  maxSamples?: number;
  brokerUrl?: string;
  /** Handler delay per task; `${DELAY}` lets processors of one file differ. */
  lease?: string;
  workers?: number;
  prefetch?: number;
}

/** Where the count handler records sample ids. */
export function countKey(prefix: string): string {
  return `${prefix}:count`;
}

/** Writes a configuration file for the fleet and returns its path. */
export async function writeFleetConfig(o: FleetOptions): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "th-fleet-" });
  const path = `${dir}/telemetry.yaml`;
  await Deno.writeTextFile(
    path,
    `
plugins:
  - ${FIXTURES}redis_fixed_device.ts
  - ${FIXTURES}redis_count.ts
log: { level: info, format: json }
admin: { enabled: false }
shutdown: { grace: 2s }
devices:
  dev:
    type: fixed
    config: { count: ${o.samples}, batch: ${o.emitBatch ?? 10}, every: ${o.every ?? "5ms"} }
brokers:
  shared:
    type: redis
    config:
      url: ${o.brokerUrl ?? REDIS_URL}
      prefix: ${o.prefix}
      task_key: "${o.prefix}:task:{id}"
      lease: ${o.lease ?? "5s"}
handlers:
  count:
    type: redis_count
    config:
      url: ${REDIS_URL}
      key: ${countKey(o.prefix)}
      delay: "\${DELAY:-0ms}"

pipelines:
  main:
    from: [dev]
    via: shared
    handlers: [count]
    batch: { max_samples: ${o.maxSamples ?? 10}, max_wait: 20ms }
    workers: ${o.workers ?? 2}
    prefetch: ${o.prefetch ?? 4}
    retry: { max_attempts: 20, delay: 50ms, max: 500ms, jitter: 0.1 }
`,
  );
  return path;
}

/** A running CLI process and its output so far. */
export interface FleetProcess {
  child: Deno.ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Sends SIGTERM and waits for the exit code. */
  stop(): Promise<number>;
}

/** Starts `deno task run --role <role> --config <path>`. */
export async function startRole(
  role: "hub" | "processor",
  path: string,
  env: Record<string, string> = {},
  extra: string[] = [],
): Promise<FleetProcess> {
  const child = await spawnTask("run", ["--role", role, "--config", path, ...extra], { env });
  const out = collect(child.stdout);
  const err = collect(child.stderr);
  return {
    child,
    stdout: out.text,
    stderr: err.text,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      const status = await child.status;
      await Promise.all([out.done, err.done]);
      return status.code;
    },
  };
}

/** Sample ids counted so far: id → times handled. */
export async function counts(prefix: string): Promise<Map<string, number>> {
  const redis = client();
  try {
    const hash = await redis.hgetall(countKey(prefix));
    return new Map(Object.entries(hash).map(([k, v]) => [k, Number(v)]));
  } finally {
    redis.disconnect();
  }
}

/** Tasks handled per process id. */
export async function tasksByPid(prefix: string): Promise<Map<string, number>> {
  const redis = client();
  try {
    const hash = await redis.hgetall(`${countKey(prefix)}:pids`);
    return new Map(Object.entries(hash).map(([k, v]) => [k, Number(v)]));
  } finally {
    redis.disconnect();
  }
}

/** Polls until `n` distinct samples are counted; fails after `timeoutMs` with what is known. */
export async function waitForSamples(
  prefix: string,
  n: number,
  timeoutMs: number,
  diagnose: () => string = () => "",
): Promise<Map<string, number>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const seen = await counts(prefix);
    if (seen.size >= n) return seen;
    if (Date.now() > end) {
      throw new Error(`Only "${seen.size}" of "${n}" samples were handled\n${diagnose()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until `n` consumers (workers) have registered with the broker, so all processors are up. */
export async function waitForConsumers(prefix: string, n: number, timeoutMs = 20_000) {
  const redis = client();
  try {
    const end = Date.now() + timeoutMs;
    while (await redis.scard(`${prefix}:consumers`) < n) {
      if (Date.now() > end) throw new Error(`Fewer than "${n}" consumers registered`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    redis.disconnect();
  }
}

/** Tasks held in the processing lists of every registered consumer. */
export async function inflight(prefix: string): Promise<number> {
  const redis = client();
  try {
    return await redis.eval(
      `local n = 0
       for _, c in ipairs(redis.call('SMEMBERS', KEYS[1])) do
         n = n + redis.call('LLEN', ARGV[1] .. ':processing:' .. c)
       end
       return n`,
      1,
      `${prefix}:consumers`,
      prefix,
    ) as number;
  } finally {
    redis.disconnect();
  }
}

/** Removes a configuration written by {@link writeFleetConfig}. */
export async function removeFleetConfig(path: string): Promise<void> {
  await Deno.remove(path.slice(0, path.lastIndexOf("/")), { recursive: true }).catch(() => {});
}

/** The counts of a stopped process's summary line ("Stopped after …"). */
export function summaryOf(p: FleetProcess): { read: number; dropped: number } {
  const m = /(\d+) samples read, .* (\d+) samples dropped/.exec(p.stdout() + p.stderr());
  if (!m) throw new Error(`No summary line in:\n${p.stderr()}`);
  return { read: Number(m[1]), dropped: Number(m[2]) };
}

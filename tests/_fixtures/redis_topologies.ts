/**
 * Redis topologies the tests start themselves, each server on its own free
 * port and stopped by pid (never by name): a Sentinel set (a master, its
 * replicas and the sentinels that watch it) and a Redis Cluster.
 *
 * @module
 */
import { Redis } from "ioredis";
import { systemClock } from "../../core/mod.ts";
import { testContext } from "../../core/testing.ts";
import redisPlugin, { type RedisBroker } from "../../plugins/redis/mod.ts";
import { requireService } from "./services.ts";
import { freePort, hasCommand, run, spawnListening } from "./tools.ts";

/** One server process the test started. */
export interface ServerProcess {
  port: number;
  child: Deno.ChildProcess;
  /** Set once it was stopped or killed. */
  stopped: boolean;
}

/** Whether `redis-server`, `redis-sentinel` and `redis-cli` are here (skips or fails under CI). */
export const HAVE_REDIS_TOOLS = await requireService(
  "redis-server, redis-sentinel and redis-cli",
  () => ["redis-server", "redis-sentinel", "redis-cli"].every(hasCommand),
  "Debian packages redis-server and redis-sentinel",
);

/** Polls `check` until it is true; throws with `what` after `ms`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A client that gives up at once when the server is gone. */
function quickClient(port: number): Redis {
  const redis = new Redis({
    port,
    host: "127.0.0.1",
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  redis.on("error", () => {});
  return redis;
}

/** Runs one command against the server on `port`; `undefined` when it cannot. */
export async function ask(port: number, ...args: (string | number)[]): Promise<unknown> {
  const redis = quickClient(port);
  try {
    await redis.connect();
    return await redis.call(String(args[0]), ...args.slice(1));
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

/** Processes to stop when the test process ends, whatever happens to the test. */
const running = new Set<ServerProcess>();
globalThis.addEventListener("unload", () => {
  for (const p of running) {
    try {
      p.child.kill("SIGKILL");
    } catch { /* gone */ }
  }
});

async function startServer(dir: string, args: string[], sentinel = false): Promise<ServerProcess> {
  const port = freePort();
  let command = "redis-server";
  let argv = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--dir",
    dir,
    "--logfile",
    `${dir}/${port}.log`,
    ...args,
  ];
  if (sentinel) {
    // Sentinel rewrites its config file, so it needs one of its own.
    const file = `${dir}/sentinel-${port}.conf`;
    await Deno.writeTextFile(file, `port ${port}\nbind 127.0.0.1\n${args.join("\n")}\n`);
    command = "redis-sentinel";
    argv = [file];
  }
  const child = await spawnListening(command, argv, port);
  const p: ServerProcess = { port, child, stopped: false };
  running.add(p);
  return p;
}

/** Kills a server with SIGKILL (by its pid): a crash, no clean shutdown. */
export async function killHard(p: ServerProcess): Promise<void> {
  if (p.stopped) return;
  p.stopped = true;
  try {
    Deno.kill(p.child.pid, "SIGKILL");
  } catch { /* gone */ }
  await p.child.status;
  running.delete(p);
}

async function stop(p: ServerProcess): Promise<void> {
  if (p.stopped) return;
  p.stopped = true;
  try {
    p.child.kill("SIGTERM");
  } catch { /* gone */ }
  await p.child.status;
  running.delete(p);
}

/** A master, its replicas and the sentinels that watch it. */
export interface SentinelSet {
  /** The master's name in Sentinel. */
  name: string;
  master: ServerProcess;
  replicas: ServerProcess[];
  sentinels: ServerProcess[];
  /** `host:port` of every sentinel, for the broker's `sentinels`. */
  sentinelAddresses: string[];
  /** The port of the master the sentinels name now. */
  currentMasterPort(): Promise<number | undefined>;
  dispose(): Promise<void>;
}

/**
 * Starts a master with AOF, `replicas` replicas of it and `sentinels`
 * sentinels (quorum 2), and waits until every sentinel knows every replica
 * and the other sentinels, so a failover can happen. `downAfterMs` is how
 * long the master must be unreachable before the sentinels act.
 */
export async function startSentinelSet(
  { replicas = 2, sentinels = 3, downAfterMs = 1000 } = {},
): Promise<SentinelSet> {
  const dir = await Deno.makeTempDir({ prefix: "th-sentinel-" });
  const name = `th${crypto.randomUUID().slice(0, 6)}`;
  const aof = ["--appendonly", "yes", "--appendfsync", "everysec"];
  const procs: ServerProcess[] = [];
  try {
    const master = await startServer(dir, [
      "--dbfilename",
      "m.rdb",
      "--appenddirname",
      "aof-m",
      ...aof,
    ]);
    procs.push(master);
    const reps: ServerProcess[] = [];
    for (let i = 0; i < replicas; i++) {
      const r = await startServer(dir, [
        "--dbfilename",
        `r${i}.rdb`,
        "--appenddirname",
        `aof-r${i}`,
        ...aof,
        "--replicaof",
        "127.0.0.1",
        String(master.port),
      ]);
      reps.push(r);
      procs.push(r);
    }
    await until("the replicas to sync", async () => {
      const info = String(await ask(master.port, "INFO", "replication") ?? "");
      return (info.match(/state=online/g) ?? []).length === replicas;
    });
    const sents: ServerProcess[] = [];
    for (let i = 0; i < sentinels; i++) {
      const s = await startServer(dir, [
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
        `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`,
      ], true);
      sents.push(s);
      procs.push(s);
    }
    await until("the sentinels to know the replicas and each other", async () => {
      for (const s of sents) {
        const reps = await ask(s.port, "SENTINEL", "REPLICAS", name) as unknown[] | undefined;
        const others = await ask(s.port, "SENTINEL", "SENTINELS", name) as unknown[] | undefined;
        if (reps?.length !== replicas || others?.length !== sentinels - 1) return false;
      }
      return true;
    }, 30_000);
    return {
      name,
      master,
      replicas: reps,
      sentinels: sents,
      sentinelAddresses: sents.map((s) => `127.0.0.1:${s.port}`),
      async currentMasterPort() {
        for (const s of sents) {
          if (s.stopped) continue;
          const addr = await ask(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name) as
            | string[]
            | undefined;
          if (addr) return Number(addr[1]);
        }
        return undefined;
      },
      async dispose() {
        // Sentinels first, so they do not fail over while the servers stop.
        for (const p of [...sents, ...reps, master]) await stop(p);
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  } catch (error) {
    for (const p of procs) await stop(p);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

/** A Redis Cluster of masters (and replicas, one per master when asked). */
export interface ClusterSet {
  /** The servers' working directory (their logs are `<port>.log`). */
  dir: string;
  masters: ServerProcess[];
  replicas: ServerProcess[];
  /** `host:port` of every node, for the broker's `cluster`. */
  addresses: string[];
  /** The server whose port is `port`. */
  byPort(port: number): ServerProcess | undefined;
  dispose(): Promise<void>;
}

/**
 * Starts `masters` cluster-enabled servers (plus `replicasPerMaster` each),
 * joins them with `redis-cli --cluster create` and waits for the cluster to
 * be ok on every node. Their directory is made in `parent` (the system's
 * temporary directory by default).
 */
export async function startCluster(
  {
    masters = 3,
    replicasPerMaster = 0,
    nodeTimeoutMs = 1000,
    parent = undefined as
      | string
      | undefined,
  } = {},
): Promise<ClusterSet> {
  const dir = await Deno.makeTempDir({ prefix: "th-cluster-", ...(parent ? { dir: parent } : {}) });
  const procs: ServerProcess[] = [];
  try {
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
      procs.push(
        await startServer(dir, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          `nodes-${i}.conf`,
          "--cluster-node-timeout",
          String(nodeTimeoutMs),
          "--appendonly",
          "yes",
          "--appenddirname",
          `aof-${i}`,
          "--dbfilename",
          `dump-${i}.rdb`,
        ]),
      );
    }
    const addresses = procs.map((p) => `127.0.0.1:${p.port}`);
    const created = await run("redis-cli", [
      "--cluster",
      "create",
      ...addresses,
      "--cluster-replicas",
      String(replicasPerMaster),
      "--cluster-yes",
    ]);
    if (created.code !== 0) throw new Error(`redis-cli --cluster create failed: ${created.output}`);
    await until("the cluster to be ok on every node", async () => {
      for (const p of procs) {
        const info = String(await ask(p.port, "CLUSTER", "INFO") ?? "");
        if (!info.includes("cluster_state:ok")) return false;
      }
      return true;
    });
    const roles = await Promise.all(procs.map((p) => ask(p.port, "ROLE") as Promise<unknown[]>));
    // A replica that never synced cannot take over: wait until every one has.
    await until("the replicas to sync", async () => {
      for (const [i, p] of procs.entries()) {
        if (roles[i]?.[0] !== "master") continue;
        const info = String(await ask(p.port, "INFO", "replication") ?? "");
        if ((info.match(/state=online/g) ?? []).length < replicasPerMaster) return false;
      }
      return true;
    });
    return {
      dir,
      masters: procs.filter((_, i) => roles[i]?.[0] === "master"),
      replicas: procs.filter((_, i) => roles[i]?.[0] !== "master"),
      addresses,
      byPort: (port) => procs.find((p) => p.port === port),
      async dispose() {
        for (const p of procs) await stop(p);
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  } catch (error) {
    for (const p of procs) await stop(p);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

/** A Redis broker with `config` (its topology and prefix included), on real time. */
export async function openBroker(
  config: Record<string, unknown>,
): Promise<{ broker: RedisBroker; close(): Promise<void> }> {
  const abort = new AbortController();
  const broker = await redisPlugin.create(
    redisPlugin.config.parse(config),
    testContext({ clock: systemClock, signal: abort.signal }),
  ) as RedisBroker;
  return {
    broker,
    async close() {
      await broker.close();
      abort.abort();
    },
  };
}

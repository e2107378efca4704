/**
 * Redis for tests: the shared server on 127.0.0.1:6379 with a random key
 * prefix per test, or a private `redis-server` on a free port for tests
 * that stop and restart it (stopped by pid, never by name).
 *
 * @module
 */
import { requireService } from "./services.ts";
import { Redis } from "ioredis";
import { type Logger, systemClock } from "../../core/mod.ts";
import { testContext } from "../../core/testing.ts";
import redisPlugin, { type RedisBroker } from "../../plugins/redis/mod.ts";
import { freePort } from "./tools.ts";

/** The shared test server. */
export const REDIS_URL = Deno.env.get("REDIS_URL") ?? "redis://127.0.0.1:6379";

/** Whether a Redis answers at `url` (for servers the tests start themselves). */
export async function redisAvailable(url = REDIS_URL): Promise<boolean> {
  try {
    await pingRedis(url);
    return true;
  } catch {
    return false;
  }
}

async function pingRedis(url: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
    await redis.ping();
  } finally {
    redis.disconnect();
  }
}

/** Resolved once: tests call `Deno.test({ ignore: !HAVE_REDIS, … })`. */
export const HAVE_REDIS = await requireService(
  `Redis at "${REDIS_URL}"`,
  () => pingRedis(REDIS_URL),
);

/** A random key prefix for one test. */
export function randomPrefix(name = "t"): string {
  return `th-test-${name}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Deletes every key starting with `prefix`. */
export async function deleteKeys(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/** A plain client for assertions; disconnect it when done. */
export function client(url = REDIS_URL): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  return redis;
}

/** A Redis broker on a fresh prefix (task records under the prefix too), with real time. */
export async function makeBroker(
  config: Record<string, unknown> = {},
  url = REDIS_URL,
  logger?: Logger,
  /** Share the keys of another broker (a second process on the same queues). */
  prefix = randomPrefix(),
): Promise<{ broker: RedisBroker; prefix: string; cleanup(): Promise<void> }> {
  const abort = new AbortController();
  const broker = await redisPlugin.create(
    redisPlugin.config.parse({ url, prefix, task_key: `${prefix}:task:{id}`, ...config }),
    testContext({ clock: systemClock, signal: abort.signal, ...(logger ? { logger } : {}) }),
  ) as RedisBroker;
  return {
    broker,
    prefix,
    async cleanup() {
      await broker.close();
      abort.abort();
      await deleteKeys(prefix, url);
    },
  };
}

/** A private redis-server with AOF on, in a temporary directory. */
export interface PrivateRedis {
  port: number;
  url: string;
  pid: number;
  stop(): Promise<void>;
  /** Starts a stopped server again on the same port and data. */
  start(): Promise<void>;
  /** Stops the server (SIGTERM, by pid) and starts it again on the same port and data. */
  restart(downMs?: number): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * Starts `redis-server --port <free> --save '' --appendonly yes --dir <tmpdir> [extra…]`,
 * its directory made in `parent` (the system's temporary directory by default).
 */
export async function startPrivateRedis(
  extra: string[] = [],
  parent?: string,
): Promise<PrivateRedis> {
  const dir = await Deno.makeTempDir({ prefix: "th-redis-", ...(parent ? { dir: parent } : {}) });
  const port = freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: Deno.ChildProcess | undefined;
  const spawn = async () => {
    child = new Deno.Command("redis-server", {
      args: ["--port", String(port), "--save", "", "--appendonly", "yes", "--dir", dir, ...extra],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const end = Date.now() + 5000;
    while (!(await redisAvailable(url).catch(() => false))) {
      if (Date.now() > end) throw new Error(`redis-server on port "${port}" did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    if (!child) return;
    const c = child;
    child = undefined;
    try {
      c.kill("SIGTERM");
    } catch { /* already gone */ }
    await c.status;
  };
  await spawn();
  return {
    port,
    url,
    get pid() {
      return child?.pid ?? -1;
    },
    stop,
    start: spawn,
    async restart(downMs = 0) {
      await stop();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await spawn();
    },
    async dispose() {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

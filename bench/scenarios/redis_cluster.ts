/**
 * Redis beyond one server, hub and processor as separate CLI processes
 * against servers the scenario starts itself (own ports, stopped by pid):
 *
 * - `redis-cluster`: the `redis` scenario on one private Redis, then on a
 *   Redis Cluster of 3 masters (12 queue shards), back to back; samples/s
 *   of both and each server's CPU (from `/proc/<pid>/stat`), total and per
 *   1,000 samples.
 * - `redis-wait`: the `redis` and `redis-latency` scenarios on a master with
 *   one replica, with `wait_replicas` 0 and 1, back to back: the cost of
 *   waiting for a replica before a batch counts as enqueued.
 *
 * @module
 */
import { startPrivateRedis } from "../../tests/_fixtures/redis_server.ts";
import { ask, startCluster, until } from "../../tests/_fixtures/redis_topologies.ts";
import type { BenchResult } from "../_harness.ts";

/** Where the servers keep their files (the bench may write only under ./data). */
const DATA = new URL("../../data/bench", import.meta.url).pathname;
import { BATCHED, PACED, runRedis } from "./redis.ts";

type Servers = Record<string, { cpu_percent: number; cpu_us_per_1k_samples: number | null }>;

function servers(result: BenchResult): Servers {
  return (result.extra?.servers ?? {}) as Servers;
}

/** `redis-cluster`: one Redis against a 3-master cluster, on the same run. */
export async function redisCluster(): Promise<BenchResult> {
  await Deno.mkdir(DATA, { recursive: true });
  const single = await startPrivateRedis([], DATA);
  let standalone: BenchResult;
  try {
    standalone = await runRedis({
      ...BATCHED,
      scenario: "redis-cluster",
      description: "the redis scenario on one private Redis (for comparison)",
      target: (prefix) => `url: "${single.url}"\ntask_key: "${prefix}:task:{id}"`,
      servers: { standalone: single.pid },
    });
  } finally {
    await single.dispose();
  }
  const cluster = await startCluster({ masters: 3, parent: DATA });
  try {
    const result = await runRedis({
      ...BATCHED,
      scenario: "redis-cluster",
      description: "simulated → hub → Redis Cluster (3 masters, 12 shards) → processor → no-op, " +
        "1,000-sample tasks, beside one Redis on the same run",
      target: () => `cluster: [${cluster.addresses.map((a) => `"${a}"`).join(", ")}]`,
      servers: Object.fromEntries(cluster.masters.map((m, i) => [`master_${i + 1}`, m.child.pid])),
    });
    const masters = Object.values(servers(result));
    const alone = servers(standalone).standalone;
    const perSample = masters.map((m) => m.cpu_us_per_1k_samples ?? 0);
    result.extra = {
      ...result.extra,
      standalone_samples_per_second: Math.round(standalone.samples_per_second),
      standalone_server: alone,
      masters_cpu_percent_total: masters.reduce((sum, m) => sum + m.cpu_percent, 0),
      // Each master's CPU per sample against one Redis's: about 1/N when the load spreads.
      master_cpu_per_sample_vs_standalone: alone?.cpu_us_per_1k_samples
        ? perSample.map((us) => Number((us / alone.cpu_us_per_1k_samples!).toFixed(2)))
        : null,
    };
    return result;
  } finally {
    await cluster.dispose();
  }
}

/** `redis-wait`: `wait_replicas` 0 and 1 on a master with one replica, back to back. */
export async function redisWait(): Promise<BenchResult> {
  await Deno.mkdir(DATA, { recursive: true });
  const master = await startPrivateRedis([], DATA);
  const replica = await startPrivateRedis(
    ["--replicaof", "127.0.0.1", String(master.port)],
    DATA,
  );
  try {
    await until("the replica to sync", async () => {
      const info = String(await ask(master.port, "INFO", "replication") ?? "");
      return info.includes("state=online");
    });
    const run = (load: typeof BATCHED, wait: number) =>
      runRedis({
        ...load,
        scenario: "redis-wait",
        description: `wait_replicas ${wait}`,
        target: (prefix) => `url: "${master.url}"\ntask_key: "${prefix}:task:{id}"`,
        brokerExtra: `wait_replicas: ${wait}`,
        servers: { master: master.pid, replica: replica.pid },
      });
    const figures = (r: BenchResult) => ({
      samples_per_second: Math.round(r.samples_per_second),
      latency_ms: r.latency_ms,
      servers: servers(r),
    });
    const batched0 = await run(BATCHED, 0);
    const batched1 = await run(BATCHED, 1);
    const paced0 = await run(PACED, 0);
    const paced1 = await run(PACED, 1);
    return {
      ...batched1,
      description: "1,000-sample tasks through a master with one replica and wait_replicas 1; " +
        "extra: the same without waiting, and 10,000 samples/s in 100-sample batches both ways",
      extra: {
        ...batched1.extra,
        batched_wait_0: figures(batched0),
        batched_wait_1: figures(batched1),
        paced_wait_0: figures(paced0),
        paced_wait_1: figures(paced1),
      },
    };
  } finally {
    await replica.dispose();
    await master.dispose();
  }
}

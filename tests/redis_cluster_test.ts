/**
 * The Redis broker on a Redis Cluster this test starts (three masters, one
 * replica each; own ports, stopped by pid): the conformance suite, shards
 * spread over the masters, per-shard dead letters and totals, and a master
 * killed with SIGKILL under load while its replica takes over.
 *
 * @module
 */
import assert from "node:assert/strict";
import { brokerConformance } from "../core/testing.ts";
import { Cluster } from "ioredis";
import { shardOf, slotOf } from "../plugins/redis/_shards.ts";
import { failoverUnderLoad } from "./_fixtures/broker_failover.ts";
import {
  ask,
  type ClusterSet,
  HAVE_REDIS_TOOLS,
  killHard,
  openBroker,
  startCluster,
  until,
} from "./_fixtures/redis_topologies.ts";
import { randomPrefix } from "./_fixtures/redis_server.ts";

/** A broker on `cluster`, on a fresh prefix. */
function clusterBroker(
  cluster: ClusterSet,
  config: Record<string, unknown> = {},
  prefix = randomPrefix("cluster"),
) {
  return openBroker({ cluster: cluster.addresses, prefix, ...config });
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_REDIS_TOOLS, fn, sanitizeOps: false, sanitizeResources: false });

// One cluster for the suite and the shard tests, each on its own prefix.
let shared: Promise<ClusterSet> | undefined;
const cluster = () => shared ??= startCluster({ masters: 3, replicasPerMaster: 1 });

if (HAVE_REDIS_TOOLS) {
  // One shard keeps one order for the queue (capability `ordered`); with 12 the
  // order holds within a shard and the suite checks what the contract promises
  // instead (every task delivered once, dead letters all listed).
  for (const shards of [1, 12]) {
    brokerConformance(`redis (cluster, ${shards} shard${shards === 1 ? "" : "s"})`, async () => {
      const { broker, close } = await clusterBroker(await cluster(), {
        shards,
        retention: "1m",
        poll_interval: "20ms",
      });
      return { broker, clock: null, cleanup: close };
    });
  }
}

test("redis (cluster): shards spread over the masters and every key of a shard is in one slot", async () => {
  const set = await cluster();
  const prefix = randomPrefix("spread");
  const { broker, close } = await clusterBroker(set, { shards: 12 }, prefix);
  try {
    for (const keys of broker.shards) {
      const slots = [keys.queues[0], keys.queues[1], keys.delayed, keys.dlq, keys.task("x")]
        .map(slotOf);
      assert.equal(new Set(slots).size, 1, `one slot for ${keys.prefix}`);
    }
    // 12 shards in 12 equal slot ranges: 4 in each third, as --cluster create splits slots.
    const thirds = [0, 0, 0];
    for (const keys of broker.shards) thirds[Math.floor((slotOf(keys.dlq) * 3) / 16384)]!++;
    assert.deepEqual(thirds, [4, 4, 4]);

    const tasks = Array.from({ length: 600 }, (_, i) => ({
      id: `spread-${i}`,
      type: "t",
      payload: {},
      attempts: 0,
      created_at: 1,
    }));
    await broker.enqueue(tasks);
    // This test's keys only: other tests leave records on the shared cluster.
    const perMaster = await Promise.all(
      set.masters.map(async (m) =>
        Number(await ask(m.port, "EVAL", "return #redis.call('KEYS', ARGV[1])", 0, `*${prefix}*`))
      ),
    );
    // Each task is a queue element plus a record; records dominate the key count.
    for (const n of perMaster) assert.ok(n > 120 && n < 300, `keys per master: ${perMaster}`);
    assert.equal((await broker.depth()).queued, 600);
  } finally {
    await close();
  }
});

test("redis (cluster): dead letters of every shard list oldest first across pages, and replay and totals cover all shards", async () => {
  const { broker, close } = await clusterBroker(await cluster(), { shards: 12 });
  try {
    const tasks = Array.from({ length: 7 }, (_, i) => ({
      id: `dl-${i}`,
      type: i % 2 ? "odd" : "even",
      payload: {},
      attempts: 0,
      created_at: 1,
    }));
    await broker.enqueue(tasks);
    const got = [];
    const abort = new AbortController();
    while (got.length < tasks.length) got.push(...await broker.reserve("c", 10, abort.signal));
    // In enqueue order, so that "oldest first" is the order of the settlements.
    got.sort((a, b) =>
      tasks.findIndex((t) => t.id === a.task.id) - tasks.findIndex((t) => t.id === b.task.id)
    );
    await broker.settle(got.map((delivery) => ({
      delivery,
      outcome: "dead_letter" as const,
      error: { message: "bad", name: "Error", permanent: true },
    })));
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await broker.listDeadLetters(cursor ? { limit: 3, cursor } : { limit: 3 });
      pages.push(page.items.map((d) => d.task.id));
      cursor = page.cursor;
    } while (cursor !== undefined && pages.length < 10);
    assert.deepEqual(pages.flat(), tasks.map((t) => t.id));
    assert.deepEqual(pages.map((p) => p.length), [3, 3, 1]);
    await assert.rejects(broker.listDeadLetters({ cursor: "1.2" }), RangeError);
    assert.equal((await broker.depth()).dead, 7);
    assert.equal(await broker.replayDeadLetters({ type: "odd" }), 3);
    assert.deepEqual(await broker.depth(), { queued: 3, inflight: 0, delayed: 0, dead: 4 });
    assert.equal((await broker.getTask("dl-1"))?.state, "queued");
    assert.equal(await broker.purgeDeadLetters({}), 4);
  } finally {
    await close();
  }
});

test("redis (cluster): a foreign RPUSH to any shard's queue is delivered and its record found", async () => {
  const set = await cluster();
  const { broker, close } = await clusterBroker(set, { shards: 12 });
  const foreign = new Cluster(set.addresses.map((a) => {
    const [host, port] = a.split(":");
    return { host: host!, port: Number(port) };
  }));
  try {
    const sample = { device: "d1", metric: "temp", value: 21.5, ts: 1_700_000_000_000 };
    // Not the shard its id hashes to, so getTask() has to look further.
    const other = (shardOf("seed-1", 12) + 5) % 12;
    await foreign.rpush(
      broker.shards[other]!.queues[1],
      JSON.stringify({ type: "telemetry.analyze", id: "seed-1", payload: sample }),
    );
    const [delivery] = await broker.reserve("w1", 10, new AbortController().signal);
    assert.equal(delivery?.task.id, "seed-1");
    assert.deepEqual(delivery?.task.payload, sample);
    assert.equal((await broker.getTask("seed-1"))?.state, "assigned");
    await broker.started([delivery!]);
    await broker.settle([{ delivery: delivery!, outcome: "completed" }]);
    assert.deepEqual(await broker.depth(), { queued: 0, inflight: 0, delayed: 0, dead: 0 });
  } finally {
    foreign.disconnect();
    await close();
  }
});

test("redis (cluster): stop the servers of the suite", async () => {
  if (shared) await (await shared).dispose();
});

/** Kills a master under load (its replica takes over); returns the figures (and prints them). */
async function killMasterUnderLoad(waitReplicas: number) {
  // Waiting for N replicas needs N left after the promotion: N + 1 per master.
  const set = await startCluster({ masters: 3, replicasPerMaster: waitReplicas + 1 });
  const prefix = randomPrefix("cfail");
  const config = {
    shards: 12,
    wait_replicas: waitReplicas,
    wait_timeout: "500ms",
    lease: "1s",
    recover_interval: "200ms",
    poll_interval: "50ms",
  };
  const hub = await clusterBroker(set, config, prefix);
  const processors = [
    await clusterBroker(set, config, prefix),
    await clusterBroker(set, config, prefix),
  ];
  try {
    const victim = set.masters[0]!;
    const figures = await failoverUnderLoad({
      producer: hub.broker,
      consumers: processors.map((p) => p.broker),
      async fault() {
        await killHard(victim);
      },
    });
    await until("a replica to take over", async () => {
      for (const r of set.replicas) {
        const role = await ask(r.port, "ROLE") as unknown[] | undefined;
        if (role?.[0] === "master") return true;
      }
      return false;
    });
    console.log(
      `cluster failover (3 masters, 12 shards), wait_replicas ${waitReplicas}: ` +
        JSON.stringify(figures),
    );
    return figures;
  } finally {
    for (const b of [hub, ...processors]) await b.close();
    await set.dispose();
  }
}

test("redis (cluster): with wait_replicas 1, a master killed under load loses no acknowledged sample", async () => {
  const figures = await killMasterUnderLoad(1);
  assert.ok(figures.acknowledged > 0);
  assert.equal(figures.lost, 0, `lost ${figures.lost} of ${figures.acknowledged}`);
});

test("redis (cluster): without wait_replicas, a master killed under load is replaced by its replica (loss reported)", async () => {
  const figures = await killMasterUnderLoad(0);
  assert.ok(figures.acknowledged > 0);
  assert.ok(figures.lost <= figures.acknowledged);
});

/**
 * The Redis broker against a real Redis: the shared conformance suite,
 * foreign producers, lease recovery and reconnects.
 *
 * @module
 */
import assert from "node:assert/strict";
import { decodeTaskSamples } from "../core/sample_codec.ts";
import { brokerConformance, recordingLogger } from "../core/testing.ts";
import {
  client,
  HAVE_REDIS,
  makeBroker,
  REDIS_URL,
  startPrivateRedis,
} from "./_fixtures/redis_server.ts";

if (HAVE_REDIS) {
  brokerConformance("redis", async () => {
    const { broker, cleanup } = await makeBroker({ retention: "1m", poll_interval: "20ms" });
    return { broker, clock: null, cleanup };
  });
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_REDIS, fn, sanitizeOps: false, sanitizeResources: false });

const never = new AbortController().signal;

test("redis broker: a foreign RPUSH in the seed format is delivered with its single sample", async () => {
  const { broker, prefix, cleanup } = await makeBroker();
  const redis = client();
  try {
    const sample = { device: "d1", metric: "temp", value: 21.5, ts: 1_700_000_000_000 };
    await redis.rpush(
      `${prefix}:tasks`,
      JSON.stringify({ type: "telemetry.analyze", id: "seed-1", payload: sample }),
    );
    const [delivery] = await broker.reserve("w1", 10, never);
    assert.equal(delivery?.task.id, "seed-1");
    assert.equal(delivery?.task.type, "telemetry.analyze");
    assert.equal(delivery?.task.attempts, 0);
    assert.deepEqual(delivery?.task.payload, sample);
    assert.equal(delivery?.invalid, undefined);
    const record = await broker.getTask("seed-1");
    assert.equal(record?.state, "assigned");
    assert.equal(record?.worker, "w1");
  } finally {
    redis.disconnect();
    await cleanup();
  }
});

test("redis broker: a foreign task without created_at keeps the same one on every delivery, so its ts-less samples keep their identity", async () => {
  const { broker, prefix, cleanup } = await makeBroker();
  const redis = client();
  try {
    await redis.rpush(
      `${prefix}:tasks`,
      JSON.stringify({
        id: "undated-1",
        type: "telemetry.analyze",
        payload: {
          samples: [{ device: "d", metric: "t", value: 1 }, { device: "d", metric: "t", value: 2 }],
        },
      }),
    );
    const [first] = await broker.reserve("w1", 10, never);
    const firstSamples = decodeTaskSamples(structuredClone(first!.task)).samples;
    // Put back as a crash would leave it: the same raw element, delivered again later.
    await broker.settle([{ delivery: first!, outcome: "released" }]);
    await new Promise((r) => setTimeout(r, 5)); // a later clock reading on redelivery
    const [again] = await broker.reserve("w2", 10, never);
    assert.equal(again!.task.created_at, first!.task.created_at);
    assert.deepEqual(decodeTaskSamples(structuredClone(again!.task)).samples, firstSamples);
    assert.notEqual(firstSamples[0]!.seq, firstSamples[1]!.seq, "two samples, two identities");
    assert.equal((await broker.getTask("undated-1"))?.created_at, first!.task.created_at);
  } finally {
    redis.disconnect();
    await cleanup();
  }
});

test("redis broker: a malformed element is delivered as invalid and dead-lettered with its raw text", async () => {
  const { broker, prefix, cleanup } = await makeBroker();
  const redis = client();
  try {
    await redis.rpush(`${prefix}:tasks`, "{not json", JSON.stringify({ id: "x1", payload: {} }));
    const deliveries = await broker.reserve("w1", 10, never);
    assert.equal(deliveries.length, 2);
    assert.match(deliveries[0]!.invalid ?? "", /not valid JSON/);
    assert.match(deliveries[1]!.invalid ?? "", /has no "type"/);
    await broker.settle(deliveries.map((delivery) => ({
      delivery,
      outcome: "dead_letter" as const,
      error: { message: delivery.invalid!, name: "PermanentError", permanent: true },
    })));
    const { items } = await broker.listDeadLetters({});
    assert.equal(items.length, 2);
    assert.equal(items[0]!.raw, "{not json");
    assert.match(items[0]!.error.message, /not valid JSON/);
    assert.equal(items[1]!.task.id, "x1");
    assert.equal((await broker.getTask("x1"))?.state, "dead_letter");
  } finally {
    redis.disconnect();
    await cleanup();
  }
});

test("redis broker: batched samples are stored as columnar series and read back whole", async () => {
  const { broker, prefix, cleanup } = await makeBroker();
  const redis = client();
  try {
    const samples = [1, 2, 3].map((seq) => ({
      device: "d",
      metric: "m",
      value: seq * 10,
      ts: 1000 + seq,
      seq,
    }));
    await broker.enqueue([{
      id: "b1",
      type: "t",
      payload: { samples },
      attempts: 0,
      created_at: 1,
    }]);
    const stored = JSON.parse((await redis.lindex(`${prefix}:tasks`, 0))!);
    assert.deepEqual(stored.payload, {
      series: [{
        device: "d",
        metric: "m",
        ts: [1001, 1002, 1003],
        values: [10, 20, 30],
        seq: [1, 2, 3],
      }],
    });
    assert.deepEqual(Object.keys(stored).slice(0, 2), ["id", "type"]);
  } finally {
    redis.disconnect();
    await cleanup();
  }
});

test("redis broker: tasks of a consumer whose lease expired are requeued at the front", async () => {
  const { broker, prefix, cleanup } = await makeBroker({ lease: "300ms", recover_interval: "1h" });
  const redis = client();
  try {
    const task = (id: string) => ({ id, type: "t", payload: {}, attempts: 0, created_at: 1 });
    await broker.enqueue([task("a"), task("b"), task("c")]);
    // A processor that was killed: it holds a and b, and its lease key has run out.
    for (let i = 0; i < 2; i++) {
      await redis.lmove(`${prefix}:tasks`, `${prefix}:processing:ghost@1`, "LEFT", "RIGHT");
    }
    await redis.sadd(`${prefix}:consumers`, "ghost@1");
    await redis.set(`${prefix}:lease:ghost@1`, "1", "PX", 300);
    assert.equal((await broker.depth()).inflight, 2);
    assert.equal(await broker.recover(), 0, "lease still valid");
    // Until Redis itself has expired the lease.
    while (await redis.exists(`${prefix}:lease:ghost@1`)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await broker.recover(), 2);
    assert.equal((await broker.getTask("a"))?.state, "queued");
    const again = await broker.reserve("survivor", 10, never);
    assert.deepEqual(again.map((d) => d.task.id), ["a", "b", "c"]);
    assert.equal((await broker.depth()).inflight, 3);
  } finally {
    redis.disconnect();
    await cleanup();
  }
});

test("redis broker: health() throws while Redis is down and both sides recover after a restart", async () => {
  const server = await startPrivateRedis();
  const { broker, cleanup } = await makeBroker({ poll_interval: "20ms" }, server.url);
  try {
    await broker.health();
    const task = (id: string) => ({ id, type: "t", payload: {}, attempts: 0, created_at: 1 });
    await broker.enqueue([task("before")]);
    await server.stop();
    await assert.rejects(broker.health(), /unreachable/);
    await assert.rejects(broker.enqueue([task("during")]));
    await server.restart();
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      try {
        await broker.health();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await broker.health();
    await broker.enqueue([task("after")]);
    const got = await broker.reserve("w", 10, never);
    assert.deepEqual(got.map((d) => d.task.id), ["before", "after"], "AOF kept the first task");
  } finally {
    await cleanup().catch(() => {});
    await server.dispose();
  }
});

test("redis broker: start-up warns when Redis may evict keys (maxmemory-policy not noeviction)", async () => {
  const server = await startPrivateRedis(["--maxmemory-policy", "allkeys-lru"]);
  const { logger, lines } = recordingLogger();
  const { cleanup } = await makeBroker({}, server.url, logger);
  try {
    const end = Date.now() + 5000;
    while (!lines.some((l) => l.level === "warn") && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const warning = lines.find((l) => l.level === "warn");
    assert.match(String(warning?.msg), /maxmemory-policy "allkeys-lru".*"noeviction"/);
  } finally {
    await cleanup();
    await server.dispose();
  }
});

test("redis broker: a batch sent again after a lost reply is acknowledged once; a different task with a held id is refused", async () => {
  const { broker, cleanup } = await makeBroker();
  try {
    const batch = ["a", "b"].map((id) => ({
      id,
      type: "t",
      payload: {},
      attempts: 0,
      created_at: 1,
    }));
    await broker.enqueue(batch);
    await broker.enqueue(batch); // the resend of a reconnect
    assert.equal((await broker.depth()).queued, 2);
    await assert.rejects(
      broker.enqueue([{ ...batch[0]!, created_at: 2 }]),
      /Task "a" is already in broker "test"/,
    );
    assert.equal((await broker.depth()).queued, 2);
  } finally {
    await cleanup();
  }
});

test("redis broker: a task a blocking move lands for a consumer that gave up waiting goes straight back", async () => {
  const { broker, prefix, cleanup } = await makeBroker({ poll_interval: "500ms" });
  const redis = client();
  try {
    const gaveUp = new AbortController();
    const waiting = broker.reserve("c1", 1, gaveUp.signal);
    await blockedInBlmove(redis, prefix);
    gaveUp.abort();
    assert.deepEqual(await waiting, []);
    // The stale BLMOVE of c1 is still pending on its connection and takes this task.
    await redis.rpush(
      `${prefix}:tasks`,
      JSON.stringify({ id: "stray", type: "t", payload: { device: "d", metric: "m", value: 1 } }),
    );
    const wait = new AbortController();
    const timer = setTimeout(() => wait.abort(), 1500);
    const got = await broker.reserve("c2", 1, wait.signal);
    clearTimeout(timer);
    assert.deepEqual(got.map((d) => d.task.id), ["stray"], "not left for lease recovery");
  } finally {
    redis.disconnect();
    await cleanup();
  }
});

/** Resolves once some connection of this Redis is blocked in BLMOVE. */
async function blockedInBlmove(redis: ReturnType<typeof client>, prefix: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const list = await redis.client("LIST") as string;
    // Listening for wake-ups too: a wake published before the SUBSCRIBE lands is missed.
    const [, subscribers] = await redis.pubsub("NUMSUB", `${prefix}:wake`) as [string, number];
    if (/ cmd=blmove /.test(list) && subscribers > 0) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error("No consumer blocked in BLMOVE");
}

type Fixture = Awaited<ReturnType<typeof makeBroker>>;

/** Enqueues a high and a low task through `producer` while `consumer` idles in BLMOVE. */
async function expectWokenUp(
  consumer: Fixture,
  producer: Fixture,
  round: string,
  url = REDIS_URL,
): Promise<void> {
  const redis = client(url);
  try {
    for (const priority of ["high", "low"] as const) {
      const id = `${round}-${priority}`;
      const give = new AbortController();
      const timer = setTimeout(() => give.abort(), 10_000);
      const waiting = consumer.broker.reserve("c1", 5, give.signal);
      await blockedInBlmove(redis, consumer.prefix);
      await producer.broker.enqueue([{
        id,
        type: "t",
        payload: {},
        attempts: 0,
        created_at: Date.now(),
        priority,
      }]);
      const got = await waiting;
      clearTimeout(timer);
      assert.deepEqual(got.map((d) => d.task.id), [id], `${id} delivered`);
      await consumer.broker.started(got);
      await consumer.broker.settle(got.map((delivery) => ({ delivery, outcome: "completed" })));
    }
  } finally {
    redis.disconnect();
  }
}

test("redis broker: high and low priority tasks wake an idle consumer of another instance at once", async () => {
  // A poll interval far longer than the test: only the wake-up can deliver in time.
  const consumer = await makeBroker({ poll_interval: "60s" });
  const producer = await makeBroker({}, undefined, undefined, consumer.prefix);
  try {
    await expectWokenUp(consumer, producer, "first");
  } finally {
    await producer.broker.close();
    await consumer.cleanup();
  }
});

test("redis broker: idle consumers are woken up again after Redis restarts", async () => {
  const server = await startPrivateRedis();
  const consumer = await makeBroker({ poll_interval: "60s" }, server.url);
  const producer = await makeBroker({}, server.url, undefined, consumer.prefix);
  const redis = client(server.url);
  try {
    await expectWokenUp(consumer, producer, "before", server.url);
    await server.restart();
    // The subscriber reconnects and subscribes again by itself.
    const channel = `${consumer.prefix}:wake`;
    const end = Date.now() + 10_000;
    for (;;) {
      const reply = await redis.pubsub("NUMSUB", channel).catch(() => [channel, 0]);
      if (Number(reply[1]) > 0) break;
      if (Date.now() > end) throw new Error("The wake subscription did not come back");
      await new Promise((r) => setTimeout(r, 50));
    }
    await producer.broker.health();
    await expectWokenUp(consumer, producer, "after", server.url);
  } finally {
    redis.disconnect();
    await producer.broker.close().catch(() => {});
    await consumer.cleanup().catch(() => {});
    await server.dispose();
  }
});

test("redis broker: dead letters page by cursor through a long queue, filtered, after purges", async () => {
  const { broker, cleanup } = await makeBroker();
  try {
    const types = ["a", "b", "c"];
    const tasks = Array.from({ length: 600 }, (_, i) => ({
      id: `t${String(i).padStart(3, "0")}`,
      type: types[i % 3]!,
      payload: {},
      attempts: 0,
      created_at: 1,
    }));
    await broker.enqueue(tasks);
    const deliveries = await broker.reserve("c1", 600, never);
    assert.equal(deliveries.length, 600);
    await broker.started(deliveries);
    const error = { message: "Bad", name: "PermanentError", permanent: true };
    await broker.settle(deliveries.map((delivery) => ({
      delivery,
      outcome: "dead_letter" as const,
      error,
    })));

    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await broker.listDeadLetters({
        type: "b",
        limit: 50,
        ...(cursor ? { cursor } : {}),
      });
      pages.push(page.items.map((d) => d.task.id));
      cursor = page.cursor;
    } while (cursor !== undefined && pages.length < 10);
    assert.deepEqual(pages.map((p) => p.length), [50, 50, 50, 50], "no empty last page");
    assert.deepEqual(pages.flat(), tasks.filter((t) => t.type === "b").map((t) => t.id));

    // A cursor whose letter was purged meanwhile still continues after it.
    const first = await broker.listDeadLetters({ limit: 10 });
    assert.equal(await broker.purgeDeadLetters({ ids: ["t009", "t010"] }), 2);
    const next = await broker.listDeadLetters({ limit: 3, cursor: first.cursor! });
    assert.deepEqual(next.items.map((d) => d.task.id), ["t011", "t012", "t013"]);
    // Everything in one page: no cursor.
    const all = await broker.listDeadLetters({ limit: 1000 });
    assert.equal(all.items.length, 598);
    assert.equal(all.cursor, undefined);

    // Replay and purge work through the queue chunk by chunk too.
    assert.equal(await broker.replayDeadLetters({ type: "c" }), 200);
    assert.equal((await broker.depth()).dead, 398);
    assert.equal((await broker.depth()).queued, 200);
    assert.equal(await broker.purgeDeadLetters({}), 398);
    assert.deepEqual(await broker.listDeadLetters({}), { items: [] });

    for (const bad of ["x", "-5", "1.5", ""]) {
      await assert.rejects(broker.listDeadLetters({ cursor: bad }), /Invalid dead-letter cursor/);
    }
  } finally {
    await cleanup();
  }
});

test("redis broker: the dead-letter queue keeps at most max_dead_letters, dropping the oldest with its record", async () => {
  const { logger, lines } = recordingLogger();
  const { broker, cleanup } = await makeBroker({ max_dead_letters: 2 }, undefined, logger);
  try {
    const task = (id: string) => ({ id, type: "t", payload: {}, attempts: 0, created_at: 1 });
    await broker.enqueue([task("a"), task("b"), task("c")]);
    const deliveries = await broker.reserve("c1", 3, never);
    await broker.started(deliveries);
    const error = { message: "Bad", name: "PermanentError", permanent: true };
    for (const delivery of deliveries) {
      await broker.settle([{ delivery, outcome: "dead_letter", error }]);
    }
    const page = await broker.listDeadLetters({});
    assert.deepEqual(page.items.map((d) => d.task.id), ["b", "c"]);
    assert.equal(await broker.getTask("a"), undefined, "the dropped letter's record is gone");
    assert.equal((await broker.getTask("c"))?.state, "dead_letter");
    assert.equal((await broker.depth()).dead, 2);
    assert.ok(
      lines.some((l) => l.msg === "Dead-letter queue full; dropped the oldest dead letters"),
    );
  } finally {
    await cleanup();
  }
});

/**
 * Counts the abort listeners each AbortSignal holds (added minus removed)
 * while `fn` runs, by wrapping AbortSignal's listener methods.
 */
async function countingAbortListeners<T>(
  fn: (live: Map<AbortSignal, Set<unknown>>, added: () => number) => Promise<T>,
): Promise<T> {
  const proto = AbortSignal.prototype as AbortSignal & EventTarget;
  const add = proto.addEventListener;
  const remove = proto.removeEventListener;
  const live = new Map<AbortSignal, Set<unknown>>();
  let added = 0;
  proto.addEventListener = function (
    this: AbortSignal,
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ) {
    if (type === "abort" && listener) {
      added++;
      let set = live.get(this);
      if (!set) live.set(this, set = new Set());
      set.add(listener);
      // A `once` listener is gone after it fires.
      if (typeof options === "object" && options.once) {
        add.call(this, "abort", () => set.delete(listener), { once: true });
      }
    }
    return add.call(this, type, listener, options);
  };
  proto.removeEventListener = function (
    this: AbortSignal,
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ) {
    if (type === "abort" && listener) live.get(this)?.delete(listener);
    return remove.call(this, type, listener, options);
  };
  try {
    return await fn(live, () => added);
  } finally {
    proto.addEventListener = add;
    proto.removeEventListener = remove;
  }
}

test("redis broker: an idle consumer's polls leave no abort listeners behind", async () => {
  const { broker, cleanup } = await makeBroker({ poll_interval: "10ms" });
  try {
    await countingAbortListeners(async (live, added) => {
      const stop = new AbortController();
      const waiting = broker.reserve("idle", 1, stop.signal);
      // Every poll adds two listeners; wait for many polls rather than for a time.
      await waitUntil(() => added() >= 100, "50 idle polls");
      const most = Math.max(...[...live.values()].map((s) => s.size));
      assert.ok(most <= 2, `a signal holds ${most} abort listeners after 50 polls`);
      stop.abort();
      assert.deepEqual(await waiting, []);
    });
  } finally {
    await cleanup();
  }
});

/** Polls `condition` every 5 ms until true; fails after `ms`. */
async function waitUntil(condition: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("redis broker: a processing list left with no consumer entry and no lease is recovered and delivered", async () => {
  const { broker, prefix, cleanup } = await makeBroker({ recover_interval: "50ms" });
  const redis = client();
  try {
    const task = (id: string) => ({ id, type: "t", payload: {}, attempts: 0, created_at: 1 });
    await broker.enqueue([task("orphan")]);
    // A stop at the wrong moment: a blocking move landed after the consumer's
    // tasks were returned, its lease deleted and its entry removed.
    await redis.lmove(`${prefix}:tasks`, `${prefix}:processing:gone@4`, "LEFT", "RIGHT");
    assert.equal(await redis.sismember(`${prefix}:consumers`, "gone@4"), 0);
    assert.equal(await redis.exists(`${prefix}:lease:gone@4`), 0);
    const wait = new AbortController();
    const timer = setTimeout(() => wait.abort(), 10_000);
    const got = await broker.reserve("survivor", 10, wait.signal);
    clearTimeout(timer);
    assert.deepEqual(got.map((d) => d.task.id), ["orphan"]);
    assert.equal(await redis.exists(`${prefix}:processing:gone@4`), 0);
    await broker.started(got);
    await broker.settle(got.map((delivery) => ({ delivery, outcome: "completed" as const })));
    assert.equal((await broker.depth()).inflight, 0);
  } finally {
    redis.disconnect();
    await cleanup();
  }
});

test("redis broker: a processing list without an entry but with a live lease is left to its consumer", async () => {
  const { broker, prefix, cleanup } = await makeBroker({ recover_interval: "1h" });
  const redis = client();
  try {
    const task = (id: string) => ({ id, type: "t", payload: {}, attempts: 0, created_at: 1 });
    await broker.enqueue([task("held")]);
    await redis.lmove(`${prefix}:tasks`, `${prefix}:processing:alive@1`, "LEFT", "RIGHT");
    await redis.set(`${prefix}:lease:alive@1`, "1", "PX", 60_000);
    // Each call scans up to 1,000 keys: enough calls to go over the whole keyspace.
    const calls = Math.ceil(await redis.dbsize() / 1000) * 4 + 10;
    for (let i = 0; i < calls; i++) assert.equal(await broker.recover(), 0);
    assert.equal(await redis.llen(`${prefix}:processing:alive@1`), 1);
    await redis.del(`${prefix}:lease:alive@1`);
    let recovered = 0;
    for (let i = 0; i < 1000 && recovered === 0; i++) recovered = await broker.recover();
    assert.equal(recovered, 1);
    assert.equal(await redis.llen(`${prefix}:tasks`), 1);
  } finally {
    redis.disconnect();
    await cleanup();
  }
});

test("redis broker: with wait_replicas, a batch no replica confirms is refused, and the same batch sent again is not added twice", async () => {
  // The shared Redis has no replicas, so WAIT never reaches 1.
  const { broker, cleanup } = await makeBroker({ wait_replicas: 1, wait_timeout: "50ms" });
  try {
    const task = {
      id: "w1",
      type: "telemetry.analyze",
      payload: {},
      attempts: 0,
      created_at: 1,
    };
    await assert.rejects(broker.enqueue([task]), /Only 0 of 1 replicas .* confirmed the batch/);
    // Resent (as the gateway does): recognised, waited for again, refused again.
    await assert.rejects(broker.enqueue([task]), /Only 0 of 1 replicas/);
    assert.equal((await broker.depth()).queued, 1);
  } finally {
    await cleanup();
  }
});

/**
 * The broker conformance suite: the `Deno.test` cases every broker must
 * pass. Public through `core/testing.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { BrokerInstance, Delivery } from "./broker.ts";
import type { Task, TaskError } from "./task.ts";
import { type FakeClock, flushMicrotasks } from "./_fake_clock.ts";

/** A fresh, empty broker for one conformance test, and how to tear it down. */
export interface BrokerFixture {
  broker: BrokerInstance;
  /** The clock the broker was given, or `null` when it uses real time. */
  clock: FakeClock | null;
  /** Closes the broker and removes anything it stored (keys, files). */
  cleanup(): Promise<void>;
}

/** Helpers handed to each conformance case. */
interface BrokerKit extends BrokerFixture {
  /** A new task whose id is unique to this test run. */
  task(name: string, extra?: Partial<Task>): Task;
  /** Delay long enough to observe with the fake clock or with real timers. */
  delay: number;
  /** Lets fake or real time pass. */
  elapse(ms: number): Promise<void>;
  /** Lets pending broker work run without moving fake time. */
  settleDown(): Promise<void>;
  /** Reserves what is available now (gives up after a real-time guard if nothing is). */
  reserveNow(max: number, consumer?: string): Promise<Delivery[]>;
  /** Reserves whatever arrives while `ms` of (fake or real) time pass. */
  reserveWithin(ms: number, max: number, consumer?: string): Promise<Delivery[]>;
  /** Starts and completes every delivery. */
  runAll(deliveries: readonly Delivery[]): Promise<void>;
}

const REAL_GUARD_MS = 2000;

function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function taskError(message: string, permanent = false): TaskError {
  return { message, name: permanent ? "PermanentError" : "Error", permanent };
}

function idsOf(deliveries: readonly Delivery[]): string[] {
  return deliveries.map((d) => d.task.id);
}

function kit(fixture: BrokerFixture): BrokerKit {
  const { broker, clock } = fixture;
  const run = Math.random().toString(36).slice(2, 8);
  const elapse = (ms: number) => clock ? clock.advance(ms) : realSleep(ms);
  const settleDown = () => clock ? flushMicrotasks() : realSleep(20);
  return {
    ...fixture,
    delay: clock ? 1000 : 60,
    elapse,
    settleDown,
    task: (name, extra = {}) => ({
      id: `${run}-${name}`,
      type: "test.task",
      payload: { name },
      attempts: 0,
      created_at: clock?.now() ?? Date.now(),
      ...extra,
    }),
    async reserveNow(max, consumer = "c1") {
      const abort = new AbortController();
      const guard = setTimeout(() => abort.abort(), REAL_GUARD_MS);
      try {
        return await broker.reserve(consumer, max, abort.signal);
      } finally {
        clearTimeout(guard);
      }
    },
    async reserveWithin(ms, max, consumer = "c1") {
      const abort = new AbortController();
      if (!clock) {
        const timer = setTimeout(() => abort.abort(), ms);
        try {
          return await broker.reserve(consumer, max, abort.signal);
        } finally {
          clearTimeout(timer);
        }
      }
      const reserved = broker.reserve(consumer, max, abort.signal);
      await clock.advance(ms);
      abort.abort();
      return await reserved;
    },
    async runAll(deliveries) {
      await broker.started(deliveries);
      await broker.settle(deliveries.map((delivery) => ({ delivery, outcome: "completed" })));
    },
  };
}

/**
 * Registers the `Deno.test` cases every broker must pass, so the memory
 * broker and the Redis broker behave the same. `makeBroker` returns a fresh,
 * empty broker per case; with `clock: null` the cases use short real delays
 * (tens of milliseconds), with a {@link FakeClock} they advance it.
 *
 * Semantics checked (and expected of every broker):
 * - `task.attempts` counts finished runs: settling a *started* delivery as
 *   `completed`, `retry` or `dead_letter` adds one; `released`, and
 *   dead-lettering a delivery that never started, add none.
 * - Within a priority, tasks come out in enqueue order; `high` comes first
 *   but `low` and `normal` still get a share under sustained `high` load.
 * - `released` puts the task back at the front of its queue.
 * - Dead letters list oldest first; replay resets attempts to 0.
 * - Settling a delivery a second time rejects with a message containing
 *   "already settled".
 *
 * @example
 * ```ts ignore
 * import { brokerConformance, FakeClock, testContext } from "../../core/testing.ts";
 * import memory from "./mod.ts";
 * brokerConformance("memory", async () => {
 *   const clock = new FakeClock();
 *   const broker = await memory.create(memory.config.parse({}), testContext({ clock }));
 *   return { broker, clock, cleanup: () => broker.close() };
 * });
 * ```
 */
export function brokerConformance(
  name: string,
  makeBroker: () => Promise<BrokerFixture>,
): void {
  const test = (title: string, fn: (k: BrokerKit) => Promise<void>) =>
    Deno.test(`${name} broker: ${title}`, async () => {
      const fixture = await makeBroker();
      try {
        await fn(kit(fixture));
      } finally {
        await fixture.cleanup();
      }
    });

  test("enqueue → reserve → started → completed walks the task record through its states", async (k) => {
    const task = k.task("a");
    await k.broker.enqueue([task]);
    assert.equal((await k.broker.getTask(task.id))?.state, "queued");

    const deliveries = await k.reserveNow(1, "worker-1");
    assert.deepEqual(idsOf(deliveries), [task.id]);
    assert.equal(deliveries[0]!.task.attempts, 0);
    assert.deepEqual(deliveries[0]!.task.payload, { name: "a" });
    const assigned = await k.broker.getTask(task.id);
    assert.equal(assigned?.state, "assigned");
    assert.equal(assigned?.worker, "worker-1");

    await k.broker.started(deliveries);
    assert.equal((await k.broker.getTask(task.id))?.state, "running");

    await k.broker.settle([{ delivery: deliveries[0]!, outcome: "completed" }]);
    const done = await k.broker.getTask(task.id);
    assert.equal(done?.state, "completed");
    assert.equal(done?.attempts, 1);
    assert.equal(done?.type, "test.task");
    assert.equal(typeof done?.completed_at, "number");
    assert.deepEqual(await k.broker.depth(), { queued: 0, inflight: 0, delayed: 0, dead: 0 });
  });

  test("reserve() returns at most max tasks", async (k) => {
    await k.broker.enqueue(["a", "b", "c", "d", "e"].map((n) => k.task(n)));
    assert.equal((await k.reserveNow(3)).length, 3);
    assert.equal((await k.reserveNow(10)).length, 2);
    assert.equal((await k.broker.depth()).inflight, 5);
  });

  test("tasks of one priority come out in enqueue order", async (k) => {
    const tasks = ["a", "b", "c", "d", "e", "f"].map((n) => k.task(n));
    await k.broker.enqueue(tasks.slice(0, 3));
    await k.broker.enqueue(tasks.slice(3));
    const got = [...await k.reserveNow(1), ...await k.reserveNow(2), ...await k.reserveNow(10)];
    assert.deepEqual(idsOf(got), tasks.map((t) => t.id));
  });

  test("higher priorities come out first", async (k) => {
    const tasks = (["low", "normal", "high"] as const).flatMap((priority) =>
      [1, 2, 3].map((i) => k.task(`${priority}-${i}`, { priority }))
    );
    await k.broker.enqueue(tasks);
    const got: Delivery[] = [];
    while (got.length < tasks.length) {
      const batch = await k.reserveNow(tasks.length);
      assert.ok(batch.length > 0, "Expected every enqueued task to be reserved");
      got.push(...batch);
    }
    assert.equal(got[0]!.task.priority, "high");
    const meanPosition = (p: string) =>
      got.reduce((sum, d, i) => sum + (d.task.priority === p ? i : 0), 0) / 3;
    assert.ok(meanPosition("high") < meanPosition("normal"), "high before normal on average");
    assert.ok(meanPosition("normal") < meanPosition("low"), "normal before low on average");
  });

  test("lower priorities are not starved under sustained high-priority load", async (k) => {
    let n = 0;
    const high = () => k.task(`high-${n++}`, { priority: "high" });
    await k.broker.enqueue(Array.from({ length: 20 }, high));
    const low = k.task("low", { priority: "low" });
    const normal = k.task("normal", { priority: "normal" });
    await k.broker.enqueue([low, normal]);
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) {
      const deliveries = await k.reserveNow(1);
      seen.push(...idsOf(deliveries));
      await k.runAll(deliveries);
      await k.broker.enqueue([high()]); // the high queue never runs dry
    }
    assert.ok(seen.includes(low.id), `Expected the low task within 10 tasks, got ${seen}`);
    assert.ok(seen.includes(normal.id), `Expected the normal task within 10 tasks, got ${seen}`);
  });

  test("reserve() waits for an enqueue", async (k) => {
    let resolved = false;
    const reserved = k.reserveNow(5).then((d) => (resolved = true, d));
    await k.settleDown();
    assert.equal(resolved, false, "reserve() resolved with nothing queued");
    const task = k.task("late");
    await k.broker.enqueue([task]);
    assert.deepEqual(idsOf(await reserved), [task.id]);
  });

  test("reserve() resolves [] when its signal aborts", async (k) => {
    const abort = new AbortController();
    const reserved = k.broker.reserve("c1", 5, abort.signal);
    await k.settleDown();
    abort.abort();
    assert.deepEqual(await reserved, []);
    assert.deepEqual(await k.broker.reserve("c1", 5, AbortSignal.abort()), []);
  });

  test("a retried task is not redelivered before its delay, then is with attempts + 1", async (k) => {
    const task = k.task("flaky");
    await k.broker.enqueue([task]);
    const [delivery] = await k.reserveNow(1);
    assert.ok(delivery);
    await k.broker.started([delivery]);
    const error = taskError("Database is restarting");
    const before = k.clock?.now() ?? Date.now();
    await k.broker.settle([{ delivery, outcome: "retry", delay: k.delay, error }]);

    const failed = await k.broker.getTask(task.id);
    assert.equal(failed?.state, "failed");
    assert.equal(failed?.attempts, 1);
    assert.deepEqual(failed?.last_error, error);
    assert.ok(failed?.due_at !== undefined && failed.due_at >= before + k.delay);
    assert.deepEqual(await k.broker.depth(), { queued: 0, inflight: 0, delayed: 1, dead: 0 });

    assert.deepEqual(await k.reserveWithin(k.delay / 2, 1), [], "redelivered before due");
    // Returns as soon as the task is due; the long bound only absorbs a busy
    // event loop when the whole suite runs in one process on real time.
    const again = await k.reserveWithin(k.clock ? k.delay * 3 : k.delay * 3 + 2000, 1);
    assert.deepEqual(idsOf(again), [task.id]);
    assert.equal(again[0]!.task.attempts, 1);
    assert.equal((await k.broker.getTask(task.id))?.state, "assigned");
  });

  test("dead letters keep error and attempts and list oldest first, page by page", async (k) => {
    const tasks = ["a", "b", "c", "d", "e"].map((n) => k.task(n));
    await k.broker.enqueue(tasks);
    const deliveries = await k.reserveNow(5);
    assert.equal(deliveries.length, 5);
    await k.broker.started(deliveries);
    await k.broker.settle(deliveries.map((delivery) => ({
      delivery,
      outcome: "dead_letter" as const,
      error: taskError(`Bad payload ${delivery.task.id}`, true),
    })));

    const record = await k.broker.getTask(tasks[0]!.id);
    assert.equal(record?.state, "dead_letter");
    assert.equal(record?.attempts, 1);
    assert.equal(record?.last_error?.message, `Bad payload ${tasks[0]!.id}`);
    assert.equal(typeof record?.dead_lettered_at, "number");

    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await k.broker.listDeadLetters(cursor ? { limit: 2, cursor } : { limit: 2 });
      pages.push(page.items.map((d) => d.task.id));
      for (const item of page.items) {
        assert.equal(item.attempts, 1);
        assert.equal(item.error.message, `Bad payload ${item.task.id}`);
        assert.equal(item.error.permanent, true);
        assert.equal(typeof item.dead_lettered_at, "number");
      }
      cursor = page.cursor;
    } while (cursor !== undefined && pages.length < 10);
    const ids = tasks.map((t) => t.id);
    assert.deepEqual(pages, [ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
    assert.equal((await k.broker.depth()).dead, 5);
  });

  test("listDeadLetters() refuses a malformed cursor or limit with a RangeError", async (k) => {
    await assert.rejects(k.broker.listDeadLetters({ cursor: "not a cursor!" }), RangeError);
    await assert.rejects(k.broker.listDeadLetters({ limit: 0 }), RangeError);
  });

  test("dead-lettering a delivery that never started counts no attempt", async (k) => {
    const task = k.task("undecodable");
    await k.broker.enqueue([task]);
    const [delivery] = await k.reserveNow(1);
    assert.ok(delivery);
    await k.broker.settle([{ delivery, outcome: "dead_letter", error: taskError("Bad", true) }]);
    const { items } = await k.broker.listDeadLetters({});
    assert.deepEqual(items.map((d) => [d.task.id, d.attempts]), [[task.id, 0]]);
  });

  const deadFour = async (k: BrokerKit) => {
    const tasks = [
      k.task("a1", { type: "type.a", pipeline: "p1" }),
      k.task("a2", { type: "type.a", pipeline: "p2" }),
      k.task("b1", { type: "type.b", pipeline: "p1" }),
      k.task("b2", { type: "type.b", pipeline: "p2" }),
    ];
    await k.broker.enqueue(tasks);
    const deliveries = await k.reserveNow(4);
    assert.equal(deliveries.length, 4);
    await k.broker.started(deliveries);
    await k.broker.settle(
      deliveries.map((delivery) => ({
        delivery,
        outcome: "dead_letter" as const,
        error: taskError("Bad"),
      })),
    );
    return tasks.map((t) => t.id) as [string, string, string, string];
  };

  test("replayDeadLetters() by ids and by filter requeues with attempts reset", async (k) => {
    const [a1, a2, b1, b2] = await deadFour(k);
    assert.equal(await k.broker.replayDeadLetters({ ids: [a1] }), 1);
    const replayed = await k.broker.getTask(a1);
    assert.equal(replayed?.state, "queued");
    assert.equal(replayed?.attempts, 0);
    assert.equal(await k.broker.replayDeadLetters({ type: "type.b" }), 2);
    assert.deepEqual((await k.broker.listDeadLetters({})).items.map((d) => d.task.id), [a2]);

    const again = await k.reserveNow(10);
    assert.deepEqual(idsOf(again).sort(), [a1, b1, b2].sort());
    assert.ok(again.every((d) => d.task.attempts === 0));

    assert.equal(await k.broker.replayDeadLetters({ pipeline: "p2" }), 1);
    assert.equal(await k.broker.replayDeadLetters({}), 0);
    assert.deepEqual(await k.broker.depth(), { queued: 1, inflight: 3, delayed: 0, dead: 0 });
  });

  test("purgeDeadLetters() deletes selected dead letters", async (k) => {
    const [a1, a2, b1, b2] = await deadFour(k);
    assert.equal(await k.broker.purgeDeadLetters({ pipeline: "p1" }), 2);
    assert.equal(await k.broker.getTask(a1), undefined);
    assert.equal(await k.broker.getTask(b1), undefined);
    assert.deepEqual((await k.broker.listDeadLetters({})).items.map((d) => d.task.id), [a2, b2]);
    assert.equal(await k.broker.purgeDeadLetters({ ids: [b2, "missing"] }), 1);
    assert.equal(await k.broker.purgeDeadLetters({}), 1);
    assert.equal((await k.broker.depth()).dead, 0);
  });

  test("a released task goes back to the front unrun, attempts unchanged", async (k) => {
    const [a, b] = [k.task("a"), k.task("b")];
    await k.broker.enqueue([a, b]);
    const [first] = await k.reserveNow(1);
    assert.equal(first?.task.id, a.id);
    await k.broker.started([first!]);
    await k.broker.settle([{ delivery: first!, outcome: "released" }]);
    const record = await k.broker.getTask(a.id);
    assert.equal(record?.state, "queued");
    assert.equal(record?.attempts, 0);

    const [again] = await k.reserveNow(1);
    assert.equal(again?.task.id, a.id);
    assert.equal(again?.task.attempts, 0);
    // Released before it started, too.
    await k.broker.settle([{ delivery: again!, outcome: "released" }]);
    assert.deepEqual(idsOf(await k.reserveNow(2)), [a.id, b.id]);
  });

  test("getTask() of an unknown id is undefined", async (k) => {
    assert.equal(await k.broker.getTask(k.task("never-enqueued").id), undefined);
  });

  test("depth() counts queued, in flight, delayed and dead tasks", async (k) => {
    assert.deepEqual(await k.broker.depth(), { queued: 0, inflight: 0, delayed: 0, dead: 0 });
    await k.broker.enqueue(["a", "b", "c", "d", "e"].map((n) => k.task(n)));
    const deliveries = await k.reserveNow(3);
    assert.equal(deliveries.length, 3);
    await k.broker.started(deliveries);
    const [retry, dead] = deliveries;
    await k.broker.settle([
      { delivery: retry!, outcome: "retry", delay: 60_000, error: taskError("Later") },
      { delivery: dead!, outcome: "dead_letter", error: taskError("Never", true) },
    ]);
    assert.deepEqual(await k.broker.depth(), { queued: 2, inflight: 1, delayed: 1, dead: 1 });
  });

  test("a delivery settles exactly once", async (k) => {
    await k.broker.enqueue([k.task("a"), k.task("b")]);
    const [a, b] = await k.reserveNow(2);
    assert.ok(a && b);
    await k.broker.started([a, b]);
    await k.broker.settle([{ delivery: a, outcome: "completed" }]);
    await assert.rejects(
      k.broker.settle([{ delivery: a, outcome: "completed" }]),
      /already settled/,
    );
    await k.broker.settle([{
      delivery: b,
      outcome: "retry",
      delay: 60_000,
      error: taskError("X"),
    }]);
    await assert.rejects(
      k.broker.settle([{ delivery: b, outcome: "dead_letter", error: taskError("X") }]),
      /already settled/,
    );
    assert.equal((await k.broker.getTask(a.task.id))?.state, "completed");
    assert.equal((await k.broker.getTask(b.task.id))?.state, "failed");
  });

  test("close() ends a waiting reserve with []", async (k) => {
    const reserved = k.broker.reserve("c1", 5, new AbortController().signal);
    await k.settleDown();
    await k.broker.close();
    assert.deepEqual(await reserved, []);
  });
}

/**
 * The broker conformance suite: the `Deno.test` cases every broker must
 * pass. Public through `core/testing.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { checkCapabilities, type Delivery } from "./broker.ts";
import type { Task, TaskError } from "./task.ts";
import {
  type BrokerFixture,
  type BrokerKit,
  caseRunner,
  idsOf,
  taskError,
} from "./_conformance_kit.ts";

export type { BrokerFixture };

/**
 * Registers the `Deno.test` cases every broker must pass, so the memory
 * broker and the Redis broker behave the same. `makeBroker` returns a fresh,
 * empty broker per case; with `clock: null` the cases use short real delays
 * (tens of milliseconds), with a {@link FakeClock} they advance it.
 *
 * The core of the contract is checked for every broker; each optional
 * capability's cases run when the broker declares it (see
 * `BrokerCapabilities`), and otherwise either check what the contract says
 * instead (tasks in enqueue order without `priorities`) or show as an
 * ignored step naming the capability.
 *
 * Semantics checked:
 * - The declaration matches the methods (`checkCapabilities`).
 * - `task.attempts` counts finished runs: settling a *started* delivery as
 *   `completed`, `retry` or `dead_letter` adds one; `released`, and
 *   dead-lettering a delivery that never started, add none.
 * - Tasks come out in enqueue order; with `priorities`, `high` comes first
 *   but `low` and `normal` still get a share under sustained `high` load.
 * - `released` puts the task back at the front of the queue; `retry` with
 *   delay 0 requeues at once; with `delayedRetries`, not before the delay.
 * - With `deadLetterBrowsing`, dead letters list oldest first and replay
 *   resets attempts to 0.
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
  const test = caseRunner(name, makeBroker);

  test("declares the capabilities whose methods it has", (k) => {
    checkCapabilities(k.broker, name);
    return Promise.resolve();
  });

  test("enqueue → reserve → started → completed walks the task through its states", async (k) => {
    const task = k.task("a");
    await k.broker.enqueue([task]);
    await k.expectRecord(task.id, (r) => assert.equal(r?.state, "queued"));

    const deliveries = await k.reserveNow(1, "worker-1");
    assert.deepEqual(idsOf(deliveries), [task.id]);
    assert.equal(deliveries[0]!.task.attempts, 0);
    assert.deepEqual(deliveries[0]!.task.payload, { name: "a" });
    await k.expectRecord(task.id, (r) => {
      assert.equal(r?.state, "assigned");
      assert.equal(r?.worker, "worker-1");
    });

    await k.broker.started(deliveries);
    await k.expectRecord(task.id, (r) => assert.equal(r?.state, "running"));

    await k.broker.settle([{ delivery: deliveries[0]!, outcome: "completed" }]);
    await k.expectRecord(task.id, (r) => {
      assert.equal(r?.state, "completed");
      assert.equal(r?.attempts, 1);
      assert.equal(r?.type, "test.task");
      assert.equal(typeof r?.completed_at, "number");
    });
    assert.deepEqual(await k.broker.depth(), { queued: 0, inflight: 0, delayed: 0, dead: 0 });
  });

  test("reserve() returns at most max tasks", async (k) => {
    await k.broker.enqueue(["a", "b", "c", "d", "e"].map((n) => k.task(n)));
    assert.equal((await k.reserveNow(3)).length, 3);
    assert.equal((await k.reserveNow(10)).length, 2);
    assert.equal((await k.broker.depth()).inflight, 5);
  });

  const priorityMix = (k: BrokerKit) =>
    (["low", "normal", "high"] as const).flatMap((priority) =>
      [1, 2, 3].map((i) => k.task(`${priority}-${i}`, { priority }))
    );
  const reserveAll = async (k: BrokerKit, count: number) => {
    const got: Delivery[] = [];
    while (got.length < count) {
      const batch = await k.reserveNow(count);
      assert.ok(batch.length > 0, "Expected every enqueued task to be reserved");
      got.push(...batch);
    }
    return got;
  };

  test("tasks of one priority come out in enqueue order", async (k) => {
    const tasks = ["a", "b", "c", "d", "e", "f"].map((n) => k.task(n));
    await k.broker.enqueue(tasks.slice(0, 3));
    await k.broker.enqueue(tasks.slice(3));
    const got = [...await k.reserveNow(1), ...await k.reserveNow(2), ...await k.reserveNow(10)];
    assert.deepEqual(idsOf(got), tasks.map((t) => t.id));
  }, {
    needs: "ordered",
    async otherwise(k) {
      // Without one order, every task still comes out, once.
      const tasks = ["a", "b", "c", "d", "e", "f"].map((n) => k.task(n));
      await k.broker.enqueue(tasks);
      assert.deepEqual(
        idsOf(await reserveAll(k, tasks.length)).sort(),
        tasks.map((t) => t.id).sort(),
      );
    },
  });

  test("higher priorities come out first", async (k) => {
    const tasks = priorityMix(k);
    await k.broker.enqueue(tasks);
    const got = await reserveAll(k, tasks.length);
    assert.equal(got[0]!.task.priority, "high");
    const meanPosition = (p: string) =>
      got.reduce((sum, d, i) => sum + (d.task.priority === p ? i : 0), 0) / 3;
    assert.ok(meanPosition("high") < meanPosition("normal"), "high before normal on average");
    assert.ok(meanPosition("normal") < meanPosition("low"), "normal before low on average");
  }, {
    needs: "priorities",
    async otherwise(k) {
      // Without priorities the contract is plain enqueue order (with one order at all).
      const tasks = priorityMix(k);
      await k.broker.enqueue(tasks);
      const ids = idsOf(await reserveAll(k, tasks.length));
      const expected = tasks.map((t) => t.id);
      if (k.broker.capabilities.ordered) assert.deepEqual(ids, expected);
      else assert.deepEqual(ids.sort(), expected.sort());
    },
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
  }, { needs: ["priorities", "ordered"] });

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

  /** Enqueues, reserves and starts one task. */
  const startOne = async (k: BrokerKit, name: string) => {
    const task = k.task(name);
    await k.broker.enqueue([task]);
    const [delivery] = await k.reserveNow(1);
    assert.ok(delivery);
    await k.broker.started([delivery]);
    return { task, delivery };
  };

  test("a retry without delay is redelivered at once with attempts + 1", async (k) => {
    const { task, delivery } = await startOne(k, "flaky");
    const error = taskError("Database is restarting");
    await k.broker.settle([{ delivery, outcome: "retry", delay: 0, error }]);
    await k.expectRecord(task.id, (r) => {
      assert.ok(r?.state === "failed" || r?.state === "queued", `state ${r?.state}`);
      assert.equal(r?.attempts, 1);
      assert.deepEqual(r?.last_error, error);
    });
    const again = await k.reserveWithin(k.clock ? k.delay : k.delay + 2000, 1);
    assert.deepEqual(idsOf(again), [task.id]);
    assert.equal(again[0]!.task.attempts, 1);
  });

  test(
    "a retried task is not redelivered before its delay, then is with attempts + 1",
    async (k) => {
      const { task, delivery } = await startOne(k, "flaky");
      const error = taskError("Database is restarting");
      const before = k.clock?.now() ?? Date.now();
      await k.broker.settle([{ delivery, outcome: "retry", delay: k.delay, error }]);

      await k.expectRecord(task.id, (failed) => {
        assert.equal(failed?.state, "failed");
        assert.equal(failed?.attempts, 1);
        assert.deepEqual(failed?.last_error, error);
        assert.ok(failed?.due_at !== undefined && failed.due_at >= before + k.delay);
      });
      assert.deepEqual(await k.broker.depth(), { queued: 0, inflight: 0, delayed: 1, dead: 0 });

      assert.deepEqual(await k.reserveWithin(k.delay / 2, 1), [], "redelivered before due");
      // Returns as soon as the task is due; the long bound only absorbs a busy
      // event loop when the whole suite runs in one process on real time.
      const again = await k.reserveWithin(k.clock ? k.delay * 3 : k.delay * 3 + 2000, 1);
      assert.deepEqual(idsOf(again), [task.id]);
      assert.equal(again[0]!.task.attempts, 1);
      await k.expectRecord(task.id, (r) => assert.equal(r?.state, "assigned"));
    },
    { needs: "delayedRetries" },
  );

  /** Dead-letters every task of `names` after starting it; returns the tasks. */
  /** Enqueues and starts `tasks`, then dead-letters each with the error `errorOf` gives it. */
  const deadLetter = async (
    k: BrokerKit,
    tasks: Task[],
    errorOf: (delivery: Delivery) => TaskError,
  ) => {
    await k.broker.enqueue(tasks);
    const deliveries = await k.reserveNow(tasks.length);
    assert.equal(deliveries.length, tasks.length);
    await k.broker.started(deliveries);
    await k.broker.settle(deliveries.map((delivery) => ({
      delivery,
      outcome: "dead_letter" as const,
      error: errorOf(delivery),
    })));
    return tasks;
  };
  const badPayload = (d: Delivery) => taskError(`Bad payload ${d.task.id}`, true);

  test("a dead-lettered task leaves the queue and counts as dead", async (k) => {
    const [task] = await deadLetter(k, [k.task("a")], badPayload);
    await k.expectRecord(task!.id, (r) => {
      assert.equal(r?.state, "dead_letter");
      assert.equal(r?.attempts, 1);
      assert.equal(r?.last_error?.message, `Bad payload ${task!.id}`);
      assert.equal(typeof r?.dead_lettered_at, "number");
    });
    assert.deepEqual(await k.broker.depth(), { queued: 0, inflight: 0, delayed: 0, dead: 1 });
    assert.deepEqual(await k.reserveWithin(k.delay, 1), [], "a dead letter was redelivered");
  });

  test("dead letters keep error and attempts and list oldest first, page by page", async (k) => {
    const dlq = k.deadLetters!;
    const tasks = await deadLetter(
      k,
      ["a", "b", "c", "d", "e"].map((n) => k.task(n)),
      badPayload,
    );
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await dlq.listDeadLetters(cursor ? { limit: 2, cursor } : { limit: 2 });
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
    if (k.broker.capabilities.ordered) {
      assert.deepEqual(pages, [ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
    } else {
      // Oldest first within a shard only: the pages still hold every dead letter once.
      assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
      assert.deepEqual(pages.flat().sort(), [...ids].sort());
    }
    assert.equal((await k.broker.depth()).dead, 5);
  }, { needs: "deadLetterBrowsing" });

  test("listDeadLetters() refuses a malformed cursor or limit with a RangeError", async (k) => {
    const dlq = k.deadLetters!;
    await assert.rejects(dlq.listDeadLetters({ cursor: "not a cursor!" }), RangeError);
    await assert.rejects(dlq.listDeadLetters({ limit: 0 }), RangeError);
  }, { needs: "deadLetterBrowsing" });

  test("dead-lettering a delivery that never started counts no attempt", async (k) => {
    const task = k.task("undecodable");
    await k.broker.enqueue([task]);
    const [delivery] = await k.reserveNow(1);
    assert.ok(delivery);
    await k.broker.settle([{ delivery, outcome: "dead_letter", error: taskError("Bad", true) }]);
    await k.expectRecord(task.id, (r) => assert.equal(r?.attempts, 0));
    assert.equal((await k.broker.depth()).dead, 1);
    if (k.deadLetters) {
      const { items } = await k.deadLetters.listDeadLetters({});
      assert.deepEqual(items.map((d) => [d.task.id, d.attempts]), [[task.id, 0]]);
    }
  });

  const deadFour = async (k: BrokerKit) => {
    const tasks = [
      k.task("a1", { type: "type.a", pipeline: "p1" }),
      k.task("a2", { type: "type.a", pipeline: "p2" }),
      k.task("b1", { type: "type.b", pipeline: "p1" }),
      k.task("b2", { type: "type.b", pipeline: "p2" }),
    ];
    await deadLetter(k, tasks, () => taskError("Bad"));
    return tasks.map((t) => t.id) as [string, string, string, string];
  };

  test("replayDeadLetters() by ids and by filter requeues with attempts reset", async (k) => {
    const dlq = k.deadLetters!;
    const [a1, a2, b1, b2] = await deadFour(k);
    assert.equal(await dlq.replayDeadLetters({ ids: [a1] }), 1);
    await k.expectRecord(a1, (r) => {
      assert.equal(r?.state, "queued");
      assert.equal(r?.attempts, 0);
    });
    assert.equal(await dlq.replayDeadLetters({ type: "type.b" }), 2);
    assert.deepEqual((await dlq.listDeadLetters({})).items.map((d) => d.task.id), [a2]);

    const again = await k.reserveNow(10);
    assert.deepEqual(idsOf(again).sort(), [a1, b1, b2].sort());
    assert.ok(again.every((d) => d.task.attempts === 0));

    assert.equal(await dlq.replayDeadLetters({ pipeline: "p2" }), 1);
    assert.equal(await dlq.replayDeadLetters({}), 0);
    assert.deepEqual(await k.broker.depth(), { queued: 1, inflight: 3, delayed: 0, dead: 0 });
  }, { needs: "deadLetterBrowsing" });

  test("purgeDeadLetters() deletes selected dead letters", async (k) => {
    const dlq = k.deadLetters!;
    const [a1, a2, b1, b2] = await deadFour(k);
    assert.equal(await dlq.purgeDeadLetters({ pipeline: "p1" }), 2);
    await k.expectRecord(a1, (r) => assert.equal(r, undefined));
    await k.expectRecord(b1, (r) => assert.equal(r, undefined));
    assert.deepEqual(
      (await dlq.listDeadLetters({})).items.map((d) => d.task.id).sort(),
      [a2, b2].sort(),
    );
    assert.equal(await dlq.purgeDeadLetters({ ids: [b2, "missing"] }), 1);
    assert.equal(await dlq.purgeDeadLetters({}), 1);
    assert.equal((await k.broker.depth()).dead, 0);
  }, { needs: "deadLetterBrowsing" });

  test("a released task goes back to the front unrun, attempts unchanged", async (k) => {
    const [a, b] = [k.task("a"), k.task("b")];
    await k.broker.enqueue([a, b]);
    const [first] = await k.reserveNow(1);
    assert.equal(first?.task.id, a.id);
    await k.broker.started([first!]);
    await k.broker.settle([{ delivery: first!, outcome: "released" }]);
    await k.expectRecord(a.id, (r) => {
      assert.equal(r?.state, "queued");
      assert.equal(r?.attempts, 0);
    });

    const [again] = await k.reserveNow(1);
    assert.equal(again?.task.id, a.id);
    assert.equal(again?.task.attempts, 0);
    // Released before it started, too.
    await k.broker.settle([{ delivery: again!, outcome: "released" }]);
    assert.deepEqual(idsOf(await k.reserveNow(2)), [a.id, b.id]);
  }, {
    needs: "ordered",
    async otherwise(k) {
      // Without one order, a released task still comes back, unrun, attempts unchanged.
      const [a, b] = [k.task("a"), k.task("b")];
      await k.broker.enqueue([a, b]);
      const first = await reserveAll(k, 2);
      await k.broker.started([first[0]!]);
      await k.broker.settle(first.map((delivery) => ({ delivery, outcome: "released" as const })));
      const again = await reserveAll(k, 2);
      assert.deepEqual(idsOf(again).sort(), [a.id, b.id].sort());
      assert.ok(again.every((d) => d.task.attempts === 0));
    },
  });

  test("getTask() of an unknown id is undefined", async (k) => {
    assert.equal(await k.records!.getTask(k.task("never-enqueued").id), undefined);
  }, { needs: "taskRecords" });

  /** A retry delay the broker holds, or 0 when it has no delayed retries. */
  const laterDelay = (k: BrokerKit) => k.broker.capabilities.delayedRetries ? 60_000 : 0;

  test("depth() counts queued, in flight, delayed and dead tasks", async (k) => {
    assert.deepEqual(await k.broker.depth(), { queued: 0, inflight: 0, delayed: 0, dead: 0 });
    await k.broker.enqueue(["a", "b", "c", "d", "e"].map((n) => k.task(n)));
    const deliveries = await k.reserveNow(3);
    assert.equal(deliveries.length, 3);
    await k.broker.started(deliveries);
    const [retry, dead] = deliveries;
    await k.broker.settle([
      { delivery: retry!, outcome: "retry", delay: laterDelay(k), error: taskError("Later") },
      { delivery: dead!, outcome: "dead_letter", error: taskError("Never", true) },
    ]);
    const delayed = k.broker.capabilities.delayedRetries ? 1 : 0;
    assert.deepEqual(await k.broker.depth(), {
      queued: 3 - delayed,
      inflight: 1,
      delayed,
      dead: 1,
    });
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
      delay: laterDelay(k),
      error: taskError("X"),
    }]);
    await assert.rejects(
      k.broker.settle([{ delivery: b, outcome: "dead_letter", error: taskError("X") }]),
      /already settled/,
    );
    await k.expectRecord(a.task.id, (r) => assert.equal(r?.state, "completed"));
    await k.expectRecord(b.task.id, (r) => assert.equal(r?.state, "failed"));
  });

  test("close() ends a waiting reserve with []", async (k) => {
    const reserved = k.broker.reserve("c1", 5, new AbortController().signal);
    await k.settleDown();
    await k.broker.close();
    assert.deepEqual(await reserved, []);
  });
}

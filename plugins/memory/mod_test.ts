import assert from "node:assert/strict";
import {
  type Delivery,
  IllegalTransitionError,
  type PluginContext,
  systemClock,
  type Task,
  type TaskError,
} from "../../core/mod.ts";
import {
  brokerConformance,
  FakeClock,
  flushMicrotasks,
  recordingLogger,
  testContext,
} from "../../core/testing.ts";
import { Deque, DueHeap } from "./_collections.ts";
import memory, { MemoryBroker, memoryBrokerConfig, PRIORITY_SCHEDULE } from "./mod.ts";

brokerConformance("memory (fake clock)", async () => {
  const clock = new FakeClock();
  const broker = await memory.create(memory.config.parse({}), testContext({ clock }));
  return { broker, clock, cleanup: () => broker.close() };
});

brokerConformance("memory (real clock)", async () => {
  const broker = await memory.create(memory.config.parse({}), testContext({ clock: systemClock }));
  return { broker, clock: null, cleanup: () => broker.close() };
});

// ---------------------------------------------------------------- helpers

function setup(config: Record<string, unknown> = {}, ctx: Partial<PluginContext> = {}) {
  const clock = new FakeClock();
  const { logger, lines } = recordingLogger();
  const broker = new MemoryBroker(
    memoryBrokerConfig.parse(config),
    testContext({ name: "mem", clock, logger, ...ctx }),
  );
  let n = 0;
  const task = (extra: Partial<Task> = {}): Task => ({
    id: `t${n++}`,
    type: "test.task",
    payload: null,
    attempts: 0,
    created_at: clock.now(),
    ...extra,
  });
  // Tasks are queued whenever these tests reserve; the guard only stops a broken broker hanging.
  const reserve = async (max: number, consumer = "c1") => {
    const abort = new AbortController();
    const guard = setTimeout(() => abort.abort(), 1000);
    try {
      return await broker.reserve(consumer, max, abort.signal);
    } finally {
      clearTimeout(guard);
    }
  };
  const complete = async (deliveries: readonly Delivery[]) => {
    await broker.started(deliveries);
    await broker.settle(deliveries.map((delivery) => ({ delivery, outcome: "completed" })));
  };
  const deadLetter = async (deliveries: readonly Delivery[]) => {
    await broker.started(deliveries);
    await broker.settle(
      deliveries.map((delivery) => ({ delivery, outcome: "dead_letter", error: ERROR })),
    );
  };
  return { broker, clock, lines, task, reserve, complete, deadLetter };
}

const ERROR: TaskError = { message: "Boom", name: "Error", permanent: false };

function ids(deliveries: readonly Delivery[]): string[] {
  return deliveries.map((d) => d.task.id);
}

function pending<T>(promise: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let done = false;
  const tracked = promise.finally(() => (done = true));
  return { settled: () => done, promise: tracked };
}

// ---------------------------------------------------------------- config

Deno.test("memory config has defaults and a description for every field", () => {
  assert.deepEqual(memoryBrokerConfig.parse({}), {
    capacity: 256,
    retention: 300_000,
    max_retained: 10_000,
    max_dead_letters: 10_000,
  });
  assert.deepEqual(memoryBrokerConfig.parse({ capacity: 50, retention: "30s" }), {
    capacity: 50,
    retention: 30_000,
    max_retained: 10_000,
    max_dead_letters: 10_000,
  });
  for (const [key, field] of Object.entries(memoryBrokerConfig.shape)) {
    assert.ok(field.description, `Field "${key}" has no description`);
  }
});

Deno.test("memory config rejects unknown keys and bad values", () => {
  assert.equal(memoryBrokerConfig.safeParse({ capacty: 5 }).success, false);
  assert.equal(memoryBrokerConfig.safeParse({ capacity: 0 }).success, false);
  assert.equal(memoryBrokerConfig.safeParse({ retention: "soon" }).success, false);
  assert.equal(memoryBrokerConfig.safeParse({ max_dead_letters: 0 }).success, false);
});

Deno.test("memory definition creates an unshared broker", async () => {
  assert.equal(memory.name, "memory");
  assert.equal(memory.kind, "broker");
  const broker = await memory.create(memory.config.parse({}), testContext());
  assert.ok(broker instanceof MemoryBroker);
  assert.equal(broker.shared, false);
  await broker.health();
  await broker.close();
});

// ---------------------------------------------------------------- priorities

Deno.test("memory broker takes priorities by weighted round-robin 4:2:1", async () => {
  const { broker, task, reserve } = setup();
  const tasks = (["low", "normal", "high"] as const).flatMap((priority) =>
    Array.from({ length: 10 }, () => task({ priority }))
  );
  await broker.enqueue(tasks);
  const got = await reserve(14);
  assert.deepEqual(got.map((d) => d.task.priority), [...PRIORITY_SCHEDULE, ...PRIORITY_SCHEDULE]);
  assert.deepEqual(
    PRIORITY_SCHEDULE.reduce(
      (n, p) => ({ ...n, [p]: (n[p] ?? 0) + 1 }),
      {} as Record<string, number>,
    ),
    { high: 4, normal: 2, low: 1 },
  );
  await broker.close();
});

Deno.test("memory broker gives a lone priority every slot", async () => {
  const { broker, task, reserve } = setup();
  await broker.enqueue(Array.from({ length: 5 }, () => task({ priority: "low" })));
  assert.equal((await reserve(10)).length, 5);
  await broker.close();
});

// ---------------------------------------------------------------- retention

Deno.test("memory broker forgets completed records after retention", async () => {
  const { broker, clock, task, reserve, complete } = setup({ retention: "1m" });
  const t = task();
  await broker.enqueue([t]);
  await complete(await reserve(1));
  await clock.advance(59_999);
  assert.equal((await broker.getTask(t.id))?.state, "completed");
  await clock.advance(1);
  assert.equal(await broker.getTask(t.id), undefined);
  await broker.close();
});

Deno.test("memory broker keeps at most max_retained completed records", async () => {
  const { broker, task, reserve, complete } = setup({ max_retained: 2 });
  const tasks = [task(), task(), task()];
  await broker.enqueue(tasks);
  await complete(await reserve(3));
  assert.equal(await broker.getTask(tasks[0]!.id), undefined);
  assert.equal((await broker.getTask(tasks[1]!.id))?.state, "completed");
  assert.equal((await broker.getTask(tasks[2]!.id))?.state, "completed");
  await broker.close();
});

Deno.test("memory broker accepts a completed task's id again as a new task", async () => {
  const { broker, task, reserve, complete } = setup();
  const t = task();
  await broker.enqueue([t]);
  await complete(await reserve(1));
  await broker.enqueue([t]);
  assert.equal((await broker.getTask(t.id))?.state, "queued");
  await broker.close();
});

// ---------------------------------------------------------------- capacity

Deno.test("memory broker with capacity makes enqueue() wait for room", async () => {
  const { broker, task, reserve } = setup({ capacity: 2 });
  await broker.enqueue([task(), task()]);
  const third = task();
  const waiting = pending(broker.enqueue([third]));
  await flushMicrotasks();
  assert.equal(waiting.settled(), false, "enqueue() beyond capacity resolved at once");
  assert.equal((await broker.getTask(third.id))?.state, "created");
  assert.deepEqual(await broker.depth(), { queued: 2, inflight: 0, delayed: 0, dead: 0 });

  assert.equal((await reserve(1)).length, 1);
  await waiting.promise;
  assert.equal((await broker.getTask(third.id))?.state, "queued");
  assert.equal((await broker.depth()).queued, 2);
  await broker.close();
});

Deno.test("memory broker admits a batch larger than capacity as room frees up, in order", async () => {
  const { broker, task, reserve } = setup({ capacity: 2 });
  const tasks = Array.from({ length: 5 }, () => task());
  const waiting = pending(broker.enqueue(tasks));
  const got: string[] = [];
  while (got.length < 5) got.push(...ids(await reserve(1)));
  await waiting.promise;
  assert.deepEqual(got, tasks.map((t) => t.id));
  await broker.close();
});

Deno.test("memory broker lets retries and releases exceed capacity", async () => {
  const { broker, task, reserve } = setup({ capacity: 1 });
  await broker.enqueue([task()]);
  const [d] = await reserve(1);
  await broker.enqueue([task()]);
  await broker.settle([{ delivery: d!, outcome: "released" }]);
  assert.equal((await broker.depth()).queued, 2);
  await broker.close();
});

Deno.test("memory broker close() rejects enqueues waiting for room", async () => {
  const { broker, task } = setup({ capacity: 1 });
  await broker.enqueue([task()]);
  const waiting = broker.enqueue([task()]);
  await broker.close();
  await assert.rejects(waiting, /Broker "mem" is closed/);
  await assert.rejects(broker.enqueue([task()]), /Broker "mem" is closed/);
});

// ---------------------------------------------------------------- dead letters

Deno.test("memory broker drops the oldest dead letter beyond max_dead_letters and logs it", async () => {
  const { broker, lines, task, reserve, deadLetter } = setup({ max_dead_letters: 2 });
  const tasks = [task(), task(), task()];
  await broker.enqueue(tasks);
  await deadLetter(await reserve(3));
  const { items } = await broker.listDeadLetters({});
  assert.deepEqual(items.map((d) => d.task.id), [tasks[1]!.id, tasks[2]!.id]);
  assert.equal(await broker.getTask(tasks[0]!.id), undefined);
  const warning = lines.find((l) => l.level === "warn");
  assert.equal(warning?.msg, "Dead-letter queue is full: dropped the oldest dead letter");
  assert.equal(warning?.task_id, tasks[0]!.id);
  assert.equal(warning?.max_dead_letters, 2);
  await broker.close();
});

Deno.test("memory broker rejects a malformed dead-letter cursor or limit", async () => {
  const { broker } = setup();
  await assert.rejects(
    broker.listDeadLetters({ cursor: "nope" }),
    /Invalid dead-letter cursor "nope"/,
  );
  await assert.rejects(broker.listDeadLetters({ limit: 0 }), /positive integer, got "0"/);
  await broker.close();
});

Deno.test("memory broker cursor stays valid when the last listed dead letter is purged", async () => {
  const { broker, task, reserve, deadLetter } = setup();
  const tasks = [task(), task(), task()];
  await broker.enqueue(tasks);
  await deadLetter(await reserve(3));
  const first = await broker.listDeadLetters({ limit: 2 });
  await broker.purgeDeadLetters({ ids: [tasks[1]!.id] });
  const next = await broker.listDeadLetters({ limit: 2, cursor: first.cursor! });
  assert.deepEqual(next.items.map((d) => d.task.id), [tasks[2]!.id]);
  assert.equal(next.cursor, undefined);
  await broker.close();
});

// ---------------------------------------------------------------- settle

Deno.test("memory broker refuses to complete a delivery that never started", async () => {
  const { broker, task, reserve } = setup();
  await broker.enqueue([task()]);
  const [d] = await reserve(1);
  await assert.rejects(
    broker.settle([{ delivery: d!, outcome: "completed" }]),
    IllegalTransitionError,
  );
  await assert.rejects(
    broker.settle([{ delivery: d!, outcome: "retry", delay: 10, error: ERROR }]),
    /Task in state "assigned" cannot take event "fail"/,
  );
  await broker.close();
});

Deno.test("memory broker settles a batch all or nothing", async () => {
  const { broker, task, reserve } = setup();
  await broker.enqueue([task(), task()]);
  const [a, b] = await reserve(2);
  await broker.started([a!]);
  await assert.rejects(
    broker.settle([{ delivery: a!, outcome: "completed" }, { delivery: b!, outcome: "completed" }]),
    IllegalTransitionError,
  );
  assert.equal((await broker.getTask(a!.task.id))?.state, "running");
  await assert.rejects(
    broker.settle([{ delivery: a!, outcome: "completed" }, { delivery: a!, outcome: "released" }]),
    /settled twice in one batch/,
  );
  assert.equal(broker.inflight(), 2);
  await broker.close();
});

Deno.test("memory broker rejects deliveries from another broker and bad retry delays", async () => {
  const one = setup();
  const other = setup();
  await one.broker.enqueue([one.task()]);
  const [d] = await one.reserve(1);
  await assert.rejects(
    other.broker.settle([{ delivery: d!, outcome: "released" }]),
    /Delivery of task "t0" does not come from broker "mem"/,
  );
  await one.broker.started([d!]);
  await assert.rejects(
    one.broker.settle([{ delivery: d!, outcome: "retry", delay: Number.NaN, error: ERROR }]),
    /non-negative number of milliseconds, got "NaN"/,
  );
  await one.broker.close();
  await other.broker.close();
});

Deno.test("memory broker requeues a zero-delay retry at once", async () => {
  const { broker, task, reserve } = setup();
  await broker.enqueue([task()]);
  const [d] = await reserve(1);
  await broker.started([d!]);
  await broker.settle([{ delivery: d!, outcome: "retry", delay: 0, error: ERROR }]);
  assert.deepEqual(await broker.depth(), { queued: 1, inflight: 0, delayed: 0, dead: 0 });
  await broker.close();
});

Deno.test("memory broker puts a released batch back at the front in its order", async () => {
  const { broker, task, reserve } = setup();
  const tasks = [task(), task(), task()];
  await broker.enqueue(tasks);
  const [a, b] = await reserve(2);
  await broker.settle([{ delivery: a!, outcome: "released" }, {
    delivery: b!,
    outcome: "released",
  }]);
  assert.deepEqual(ids(await reserve(3)), tasks.map((t) => t.id));
  await broker.close();
});

Deno.test("memory broker tracks in-flight deliveries per consumer", async () => {
  const { broker, task, reserve, complete } = setup();
  await broker.enqueue([task(), task(), task()]);
  const mine = await reserve(2, "worker-1");
  await reserve(1, "worker-2");
  assert.equal(broker.inflight("worker-1"), 2);
  assert.equal(broker.inflight("worker-2"), 1);
  await complete(mine);
  assert.equal(broker.inflight("worker-1"), 0);
  assert.equal(broker.inflight(), 1);
  await broker.close();
});

Deno.test("memory broker rejects a duplicate task id and enqueues nothing of that batch", async () => {
  const { broker, task } = setup();
  const t = task();
  await broker.enqueue([t]);
  await assert.rejects(broker.enqueue([task(), t]), /Task "t0" is already in broker "mem"/);
  const u = task();
  await assert.rejects(broker.enqueue([u, u]), /Task "t2" is already in broker "mem"/);
  assert.equal((await broker.depth()).queued, 1);
  await broker.close();
});

// ---------------------------------------------------------------- timers and shutdown

Deno.test("memory broker keeps one timer for many delayed tasks", async () => {
  const { broker, clock, task, reserve } = setup();
  await broker.enqueue(Array.from({ length: 50 }, () => task()));
  const deliveries = await reserve(50);
  await broker.started(deliveries);
  await broker.settle(deliveries.map((delivery, i) => ({
    delivery,
    outcome: "retry" as const,
    delay: 5000 - i * 10,
    error: ERROR,
  })));
  assert.equal(clock.pending, 0, "no timer while nobody waits");
  const abort = new AbortController();
  const waiting = broker.reserve("c1", 100, abort.signal);
  await flushMicrotasks();
  assert.equal(clock.pending, 1);
  await clock.advance(5000 - 49 * 10);
  const first = await waiting;
  assert.deepEqual(ids(first), ["t49"]);
  await broker.close();
  assert.equal(clock.pending, 0);
});

Deno.test("memory broker closes when the component's signal aborts", async () => {
  const abort = new AbortController();
  const { broker } = setup({}, { signal: abort.signal });
  const waiting = broker.reserve("c1", 1, new AbortController().signal);
  await flushMicrotasks();
  abort.abort();
  assert.deepEqual(await waiting, []);
});

Deno.test("memory broker reserve() refuses a non-positive max", async () => {
  const { broker } = setup();
  await assert.rejects(broker.reserve("c1", 0, AbortSignal.abort()), RangeError);
  await broker.close();
});

// ---------------------------------------------------------------- containers

Deno.test("Deque matches an array model through wrap-around and growth", () => {
  const deque = new Deque<number>();
  const model: number[] = [];
  let x = 0;
  for (let i = 0; i < 2000; i++) {
    const op = (i * 7919) % 5;
    if (op < 2) (deque.push(x), model.push(x++));
    else if (op === 2) (deque.unshift(x), model.unshift(x++));
    else assert.equal(deque.shift(), model.shift());
    assert.equal(deque.length, model.length);
    assert.equal(deque.peek(), model[0]);
  }
  assert.deepEqual([...deque], model);
});

Deno.test("DueHeap pops by due time, equal due times in insertion order", () => {
  const heap = new DueHeap<{ due: number; order: number }>();
  const items = Array.from({ length: 200 }, (_, order) => ({ due: (order * 37) % 23, order }));
  for (const item of items) heap.push(item);
  const popped: { due: number; order: number }[] = [];
  for (let item = heap.pop(); item; item = heap.pop()) popped.push(item);
  assert.deepEqual(popped, [...items].sort((a, b) => a.due - b.due || a.order - b.order));
  assert.equal(heap.length, 0);
});

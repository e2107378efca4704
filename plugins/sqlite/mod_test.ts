import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type DeadLetter, type Delivery, systemClock, type Task } from "../../core/mod.ts";
import { brokerConformance, FakeClock, recordingLogger, testContext } from "../../core/testing.ts";
import sqlite, { SqliteBroker, sqliteBrokerConfig } from "./mod.ts";

async function tempDb(): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "sqlite-broker-" });
  return { path: `${dir}/broker.db`, remove: () => Deno.remove(dir, { recursive: true }) };
}

/** A test body given the path of a database file in a directory removed afterwards. */
function inTempDb(fn: (path: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const { path, remove } = await tempDb();
    try {
      await fn(path);
    } finally {
      await remove();
    }
  };
}

brokerConformance("sqlite (fake clock)", async () => {
  const { path, remove } = await tempDb();
  const clock = new FakeClock();
  const broker = await sqlite.create(sqlite.config.parse({ path }), testContext({ clock }));
  return { broker, clock, cleanup: async () => (await broker.close(), await remove()) };
});

brokerConformance("sqlite (real clock)", async () => {
  const { path, remove } = await tempDb();
  const broker = await sqlite.create(
    sqlite.config.parse({ path }),
    testContext({ clock: systemClock }),
  );
  return { broker, clock: null, cleanup: async () => (await broker.close(), await remove()) };
});

// ---------------------------------------------------------------- helpers

let n = 0;
function task(extra: Partial<Task> = {}): Task {
  return {
    id: `t${n++}`,
    type: "test.task",
    payload: { samples: [{ device: "d", metric: "m", value: n, ts: 1_700_000_000_000 + n }] },
    attempts: 0,
    created_at: 1_700_000_000_000,
    checked: true,
    ...extra,
  };
}

async function reserve(broker: SqliteBroker, max = 10, consumer = "c1"): Promise<Delivery[]> {
  const abort = new AbortController();
  const guard = setTimeout(() => abort.abort(), 2000);
  try {
    return await broker.reserve(consumer, max, abort.signal);
  } finally {
    clearTimeout(guard);
  }
}

/** Polls `check` until it holds (or fails after `ms`). */
async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function open(path: string, config: Record<string, unknown> = {}, extra = {}) {
  const { logger, lines } = recordingLogger();
  const clock = new FakeClock(Date.now());
  const broker = new SqliteBroker(
    sqliteBrokerConfig.parse({ path, ...config }),
    testContext({ name: "sq", clock, logger }),
    extra,
  );
  return { broker, clock, lines };
}

// ---------------------------------------------------------------- durability

Deno.test(
  "sqlite broker: tasks enqueued before a close are delivered by the next instance, payload intact",
  inTempDb(async (path) => {
    const first = open(path).broker;
    const tasks = [task(), task({ priority: "high" }), task({ payload: { free: ["form", 1] } })];
    await first.enqueue(tasks);
    await first.close();
    const second = open(path).broker;
    const got = await reserve(second);
    assert.deepEqual(got.map((d) => d.task.id).sort(), tasks.map((t) => t.id).sort());
    const free = got.find((d) => d.task.id === tasks[2]!.id)!;
    assert.deepEqual(free.task.payload, { free: ["form", 1] });
    const batch = got.find((d) => d.task.id === tasks[0]!.id)!;
    // Stored columnar, decoded by workers into the same samples.
    assert.deepEqual(batch.task.payload, {
      series: [{ device: "d", metric: "m", ts: [1_700_000_000_000 + n - 2], values: [n - 2] }],
    });
    await second.close();
  }),
);

Deno.test(
  "sqlite broker: tasks held by a closed instance go back to the queue at once",
  inTempDb(async (path) => {
    const a = open(path).broker;
    const b = open(path).broker;
    const t = task();
    await a.enqueue([t]);
    assert.equal((await reserve(a)).length, 1);
    await a.close();
    assert.deepEqual((await reserve(b)).map((d) => d.task.id), [t.id]);
    await b.close();
  }),
);

Deno.test(
  "sqlite broker: a settle after the lease expired is ignored with a warning and the task runs again",
  inTempDb(async (path) => {
    const a = open(path, { lease: "300ms" });
    const b = open(path, { lease: "300ms" });
    const t = task();
    await a.broker.enqueue([t]);
    const [held] = await reserve(a.broker);
    await a.broker.started([held!]);
    // B's clock runs ahead: A's lease looks expired to B's next recovery round.
    await b.clock.advance(10_000);
    await until(async () => (await a.broker.getTask(t.id))?.state === "queued", "recovery");
    await a.broker.settle([{ delivery: held!, outcome: "completed" }]);
    assert.ok(a.lines.some((l) => String(l.msg).includes("lease expired")));
    const [again] = await reserve(b.broker);
    assert.equal(again?.task.id, t.id);
    assert.equal(again?.task.attempts, 0, "a lost run counts no attempt");
    await a.broker.close();
    await b.broker.close();
  }),
);

// ---------------------------------------------------------------- settlements

Deno.test(
  "sqlite broker: a dead letter with a replacement task keeps only the replacement (quarantine)",
  inTempDb(async (path) => {
    const { broker } = open(path);
    const t = task();
    await broker.enqueue([t]);
    const [d] = await reserve(broker);
    await broker.started([d!]);
    const kept: Task = {
      ...t,
      payload: { samples: [{ device: "d", metric: "bad", value: 1, ts: 5 }] },
    };
    const error = {
      message: "1 sample refused",
      name: "PermanentError",
      permanent: true,
      samples: [{ index: 0, reason: "Value out of range" }],
    };
    await broker.settle([{ delivery: d!, outcome: "dead_letter", error, task: kept }]);
    const { items } = await broker.listDeadLetters({});
    assert.equal(items.length, 1);
    assert.equal(items[0]!.task.id, t.id);
    assert.equal(items[0]!.attempts, 1);
    assert.equal(items[0]!.task.attempts, 1);
    assert.deepEqual(items[0]!.error, error);
    assert.deepEqual(items[0]!.task.payload, {
      series: [{ device: "d", metric: "bad", ts: [5], values: [1] }],
    });
    assert.equal(await broker.replayDeadLetters({ ids: [t.id] }), 1);
    const [replayed] = await reserve(broker);
    assert.deepEqual(replayed!.task.payload, items[0]!.task.payload);
    await broker.close();
  }),
);

/**
 * Enqueues a task, damages its stored payload with `damage`, then reserves
 * it (delivered `invalid`, matching `invalid`) and dead-letters it as the
 * runtime would; returns the dead letter.
 */
async function deadLetterDamaged(
  path: string,
  damage: (db: DatabaseSync) => void,
  invalid: RegExp,
): Promise<DeadLetter> {
  const producer = open(path).broker;
  await producer.enqueue([task()]);
  await producer.close();
  const db = new DatabaseSync(path);
  damage(db);
  db.close();
  const { broker } = open(path);
  try {
    const [d] = await reserve(broker);
    assert.match(d!.invalid ?? "", invalid);
    await broker.settle([{
      delivery: d!,
      outcome: "dead_letter",
      error: { message: d!.invalid!, name: "Error", permanent: true },
    }]);
    const { items } = await broker.listDeadLetters({});
    assert.equal(items.length, 1);
    return items[0]!;
  } finally {
    await broker.close();
  }
}

Deno.test(
  "sqlite broker: a stored payload that is not JSON is delivered invalid and dead-lettered raw",
  inTempDb(async (path) => {
    const dead = await deadLetterDamaged(
      path,
      (db) => db.exec("UPDATE bodies SET payload = '{not json'"),
      /not valid JSON/,
    );
    assert.equal(dead.raw, "{not json");
    assert.equal(dead.attempts, 0);
  }),
);

Deno.test(
  "sqlite broker: a blob that is not UTF-8 is dead-lettered base64-encoded",
  inTempDb(async (path) => {
    const dead = await deadLetterDamaged(
      path,
      (db) => db.prepare("UPDATE bodies SET payload = ?").run(new Uint8Array([0xff, 0xfe, 0x7b])),
      /not valid UTF-8/,
    );
    assert.equal(dead.raw_base64, btoa("\xff\xfe\x7b"));
    assert.equal(dead.raw, undefined);
  }),
);

Deno.test(
  "sqlite broker: a payload that is not JSON is refused as permanent at enqueue",
  inTempDb(async (path) => {
    const { broker } = open(path);
    await assert.rejects(
      broker.enqueue([task({ payload: { big: 1n } })]),
      (e: Error) => e.name === "PermanentError" && /cannot be stored/.test(e.message),
    );
    await broker.close();
  }),
);

Deno.test(
  "sqlite broker: a batch holding an id still held is refused whole, other callers' batches commit",
  inTempDb(async (path) => {
    const { broker } = open(path);
    const held = task();
    await broker.enqueue([held]);
    const other = task();
    const [refused, accepted] = await Promise.allSettled([
      broker.enqueue([task(), held]),
      broker.enqueue([other]),
    ]);
    assert.equal(refused.status, "rejected");
    assert.match(String((refused as PromiseRejectedResult).reason), /already in broker "sq"/);
    assert.equal(accepted.status, "fulfilled");
    assert.equal((await broker.depth()).queued, 2);
    await broker.close();
  }),
);

Deno.test(
  "sqlite broker: enqueue waits for room when the queue is at capacity",
  inTempDb(async (path) => {
    const { broker } = open(path, { capacity: 2 });
    await broker.enqueue([task(), task()]);
    let done = false;
    const waiting = broker.enqueue([task()]).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(done, false, "enqueue resolved with the queue full");
    await reserve(broker, 1);
    await waiting;
    assert.equal((await broker.depth()).queued, 2);
    await broker.close();
  }),
);

// ---------------------------------------------------------------- files and disks

Deno.test(
  "sqlite broker: a file that is not a database is refused with its name",
  inTempDb(async (path) => {
    await Deno.writeTextFile(path, "not a database at all\n".repeat(100));
    assert.throws(
      () => open(path),
      new Error(`Cannot open broker database "${path}": file is not a database`),
    );
  }),
);

Deno.test(
  "sqlite broker: another application's SQLite database is refused",
  inTempDb((path) => {
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY)");
    db.close();
    assert.throws(
      () => open(path),
      /^Error: Cannot open broker database ".*": it is not a TelemetryHub broker database \(application_id 0, tables invoices\)$/,
    );
    return Promise.resolve();
  }),
);

Deno.test(
  "sqlite broker: a file of another schema version is refused",
  inTempDb(async (path) => {
    await open(path).broker.close();
    const db = new DatabaseSync(path);
    db.exec("PRAGMA user_version = 99");
    db.close();
    assert.throws(() => open(path), /schema version 99 is not 1/);
  }),
);

Deno.test(
  "sqlite broker: a full disk fails enqueue with a clear error and health(), keeps what was committed, and recovers",
  inTempDb(async (path) => {
    await open(path).broker.close(); // the schema, then a size cap just above it
    const pages = Number(new DatabaseSync(path).prepare("PRAGMA page_count").get()?.page_count);
    const { broker, lines } = open(path, {}, { maxPageCount: pages + 40 });
    const big = () => task({ payload: { blob: "x".repeat(20_000) } });
    let accepted = 0;
    let failure: Error | undefined;
    for (let i = 0; i < 100 && !failure; i++) {
      try {
        await broker.enqueue([big()]);
        accepted++;
      } catch (error) {
        failure = error as Error;
      }
    }
    assert.ok(failure, "Expected the capped file to fill up");
    assert.ok(accepted > 0);
    assert.equal(
      failure.message,
      `Cannot write broker database "${path}": database or disk is full`,
    );
    assert.notEqual(failure.name, "PermanentError", "the gateway must retry, not drop");
    await assert.rejects(broker.health(), /database or disk is full/);
    assert.ok(lines.some((l) => l.level === "error"));
    assert.equal((await broker.depth()).queued, accepted, "committed tasks are kept");

    // Draining frees pages: writes and health come back.
    const drained = await reserve(broker, 100);
    await broker.started(drained);
    await broker.settle(drained.map((delivery) => ({ delivery, outcome: "completed" })));
    await broker.enqueue([big()]);
    await broker.health();
    await broker.close();
  }),
);

Deno.test(
  "sqlite broker: completed records beyond max_retained are forgotten oldest first",
  inTempDb(async (path) => {
    const { broker, clock } = open(path, { max_retained: 2, recover_interval: "50ms" });
    const tasks = [task(), task(), task(), task()];
    await broker.enqueue(tasks);
    for (const t of tasks) {
      const [d] = await reserve(broker, 1);
      assert.equal(d?.task.id, t.id);
      await broker.started([d!]);
      await broker.settle([{ delivery: d!, outcome: "completed" }]);
      await clock.advance(1);
    }
    await until(async () => (await broker.getTask(tasks[1]!.id)) === undefined, "pruning");
    assert.equal(await broker.getTask(tasks[0]!.id), undefined);
    assert.equal((await broker.getTask(tasks[2]!.id))?.state, "completed");
    assert.equal((await broker.getTask(tasks[3]!.id))?.state, "completed");
    await broker.close();
  }),
);

Deno.test(
  "sqlite broker: lock files of instances that are gone are removed at open, held ones kept",
  inTempDb(async (path) => {
    const running = open(path).broker;
    await Deno.writeTextFile(`${path}-owners/stale.lock`, "");
    const next = open(path).broker;
    const names = [...Deno.readDirSync(`${path}-owners`)].map((e) => e.name);
    assert.equal(names.length, 2, `Expected the two live instances' files, got ${names}`);
    assert.ok(!names.includes("stale.lock"));
    await running.close();
    await next.close();
    assert.deepEqual([...Deno.readDirSync(`${path}-owners`)], []);
  }),
);

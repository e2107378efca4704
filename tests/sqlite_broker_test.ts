/**
 * The sqlite broker across processes: a producer and a consumer sharing
 * one file, and a consumer killed with SIGKILL whose tasks are delivered
 * again.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Delivery, systemClock } from "../core/mod.ts";
import { recordingLogger, testContext } from "../core/testing.ts";
import { SqliteBroker, sqliteBrokerConfig } from "../plugins/sqlite/mod.ts";

const CHILD = new URL("./_fixtures/sqlite_broker_child.ts", import.meta.url).pathname;

function spawnChild(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", CHILD, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** The first line the child prints. */
async function firstLine(child: Deno.ChildProcess): Promise<string> {
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Child ended before printing a line: "${text}"`);
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text.slice(0, text.indexOf("\n"));
}

function open(path: string, config: Record<string, unknown> = {}) {
  const { logger, lines } = recordingLogger();
  const broker = new SqliteBroker(
    sqliteBrokerConfig.parse({ path, ...config }),
    testContext({ name: "sq", clock: systemClock, logger }),
  );
  return { broker, lines };
}

async function reserveFor(broker: SqliteBroker, ms: number, max = 50): Promise<Delivery[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ms);
  try {
    return await broker.reserve("parent", max, abort.signal);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("sqlite broker: a producer process and a consumer process share one file, each task delivered once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sqlite-shared-" });
  const path = `${dir}/broker.db`;
  const { broker } = open(path);
  const producer = spawnChild(["produce", path, "300", "7", "p"]);
  try {
    const seen: string[] = [];
    const deadline = Date.now() + 30_000;
    while (seen.length < 300 && Date.now() < deadline) {
      const deliveries = await reserveFor(broker, 1000);
      await broker.started(deliveries);
      await broker.settle(deliveries.map((delivery) => ({ delivery, outcome: "completed" })));
      seen.push(...deliveries.map((d) => d.task.id));
    }
    assert.equal(await firstLine(producer), "done");
    assert.equal((await producer.status).code, 0);
    assert.equal(seen.length, 300, `Expected 300 deliveries, got ${seen.length}`);
    assert.equal(new Set(seen).size, 300, "a task was delivered twice");
    // One producer, one queue: enqueue order is kept across processes.
    assert.deepEqual(seen, Array.from({ length: 300 }, (_, i) => `p-${i}`));
    assert.deepEqual(await broker.depth(), { queued: 0, inflight: 0, delayed: 0, dead: 0 });
  } finally {
    await broker.close();
    await producer.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite broker: tasks of a consumer killed with SIGKILL are delivered again, at once to a new instance", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sqlite-crash-" });
  const path = `${dir}/broker.db`;
  const first = open(path);
  const ids = Array.from({ length: 20 }, (_, i) => `k-${i}`);
  await first.broker.enqueue(
    ids.map((id) => ({ id, type: "test.task", payload: { id }, attempts: 0, created_at: 1 })),
  );
  const holder = spawnChild(["hold", path, "8"]);
  let second: SqliteBroker | undefined;
  try {
    const { held } = JSON.parse(await firstLine(holder)) as { held: string[] };
    assert.deepEqual(held, ids.slice(0, 8));
    assert.equal((await first.broker.depth()).inflight, 8);
    holder.kill("SIGKILL");
    assert.equal((await holder.status).signal, "SIGKILL");

    // A process started after the crash finds the dead holder's pid gone at open.
    const started = Date.now();
    second = open(path).broker;
    const again: Delivery[] = [];
    while (again.length < 20) {
      const batch = await reserveFor(second, 2000);
      assert.ok(batch.length > 0, `Only ${again.length} of 20 tasks came back`);
      again.push(...batch);
    }
    assert.ok(Date.now() - started < 2000, "recovery waited for the lease");
    assert.deepEqual(again.map((d) => d.task.id).sort(), [...ids].sort());
    const redelivered = again.filter((d) => held.includes(d.task.id));
    assert.ok(redelivered.every((d) => d.task.attempts === 0), "a killed run counts no attempt");
    assert.equal((await second.getTask(held[0]!))?.state, "assigned");
  } finally {
    await first.broker.close();
    await second?.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite broker: a running instance requeues a killed consumer's tasks within its recover interval", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sqlite-crash-" });
  const path = `${dir}/broker.db`;
  const { broker, lines } = open(path, { recover_interval: "200ms" });
  const ids = Array.from({ length: 5 }, (_, i) => `r-${i}`);
  await broker.enqueue(
    ids.map((id) => ({ id, type: "test.task", payload: { id }, attempts: 0, created_at: 1 })),
  );
  const holder = spawnChild(["hold", path, "5"]);
  try {
    const { held } = JSON.parse(await firstLine(holder)) as { held: string[] };
    assert.equal(held.length, 5);
    holder.kill("SIGKILL");
    await holder.status;
    const again = await reserveFor(broker, 5000);
    assert.deepEqual(again.map((d) => d.task.id).sort(), [...ids].sort());
    assert.ok(lines.some((l) => String(l.msg).startsWith("Requeued tasks")));
  } finally {
    await broker.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite broker: every enqueue that resolved before a SIGKILL is in the file afterwards", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sqlite-kill-" });
  const path = `${dir}/broker.db`;
  const flood = spawnChild(["flood", path]);
  let broker: SqliteBroker | undefined;
  try {
    // Kill mid-stream, after some acknowledged batches.
    const reader = flood.stdout.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while ((text.match(/\n/g) ?? []).length < 40) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Producer ended early: "${text}"`);
      text += decoder.decode(value, { stream: true });
    }
    flood.kill("SIGKILL");
    await flood.status;
    // Everything printed before the kill had been acknowledged.
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const acked = text.split("\n").filter((l) => l.startsWith("f-"));
    const last = Number(acked.at(-1)!.slice(2));
    broker = open(path).broker;
    for (let i = 0; i <= last; i++) {
      assert.equal((await broker.getTask(`f-${i}`))?.state, "queued", `Task f-${i} was lost`);
    }
    const depth = await broker.depth();
    assert.ok(depth.queued >= last + 1 && depth.queued % 5 === 0, "a batch is all or nothing");
  } finally {
    await broker?.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Split roles as real processes on a Redis broker: one hub, two
 * processors; a SIGKILLed processor; a Redis restart in the middle of a run.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  counts,
  type FleetProcess,
  inflight,
  removeFleetConfig,
  startRole,
  summaryOf,
  tasksByPid,
  waitForConsumers,
  waitForSamples,
  writeFleetConfig,
} from "./_fixtures/redis_fleet.ts";
import {
  deleteKeys,
  HAVE_REDIS,
  randomPrefix,
  startPrivateRedis,
} from "./_fixtures/redis_server.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_REDIS, fn, sanitizeOps: false, sanitizeResources: false });

async function stopAll(processes: FleetProcess[]): Promise<void> {
  await Promise.all(processes.map((p) => p.stop().catch(() => -1)));
}

function logs(processes: Record<string, FleetProcess>): () => string {
  return () =>
    Object.entries(processes).map(([name, p]) =>
      `--- ${name} stderr\n${p.stderr().slice(-3000)}\n--- ${name} stdout\n${
        p.stdout().slice(-1000)
      }`
    ).join("\n");
}

test("redis fleet: one hub and two processors handle every sample exactly once", async () => {
  const prefix = randomPrefix("fleet");
  const path = await writeFleetConfig({ prefix, samples: 2000, emitBatch: 10, every: "5ms" });
  const p1 = await startRole("processor", path);
  const p2 = await startRole("processor", path);
  let hub: FleetProcess | undefined;
  try {
    await waitForConsumers(prefix, 4); // two workers each
    hub = await startRole("hub", path);
    const seen = await waitForSamples(prefix, 2000, 30_000, logs({ hub, p1, p2 }));
    await new Promise((r) => setTimeout(r, 300)); // would-be duplicates show up
    const again = await counts(prefix);
    assert.equal(again.size, 2000);
    const twice = [...again].filter(([, n]) => n !== 1);
    assert.deepEqual(twice, [], "every sample handled exactly once");
    assert.equal(seen.get("dev/temperature/0"), 1);
    const pids = await tasksByPid(prefix);
    assert.equal(pids.size, 2, `both processors took tasks: ${JSON.stringify([...pids])}`);
    assert.equal(await hub.stop(), 0);
    assert.equal(await p1.stop(), 0);
    assert.equal(await p2.stop(), 0);
    assert.match(hub.stdout(), /Stopped after/);
  } finally {
    await stopAll([...(hub ? [hub] : []), p1, p2]);
    await deleteKeys(prefix);
    await removeFleetConfig(path);
  }
});

test("redis fleet: tasks held by a SIGKILLed processor are completed by the survivor", async () => {
  const prefix = randomPrefix("kill");
  // Default lease (5s) and recovery interval (1s): the issue asks for recovery within 10 s.
  const path = await writeFleetConfig({ prefix, samples: 600, emitBatch: 10, every: "2ms" });
  const slow = await startRole("processor", path, { DELAY: "300ms" });
  const hub = await startRole("hub", path);
  let survivor: FleetProcess | undefined;
  try {
    // Wait until the slow processor has finished a task and holds more.
    const end = Date.now() + 20_000;
    for (;;) {
      const pids = await tasksByPid(prefix);
      const held = await inflight(prefix);
      if ((pids.get(String(slow.child.pid)) ?? 0) > 0 && held > 0) break;
      if (Date.now() > end) throw new Error(`Slow processor never held tasks\n${slow.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    survivor = await startRole("processor", path);
    slow.child.kill("SIGKILL");
    await slow.child.status;
    const killedAt = Date.now();
    const seen = await waitForSamples(prefix, 600, 30_000, logs({ hub, survivor }));
    assert.equal(seen.size, 600, "nothing lost");
    const recovery = Date.now() - killedAt;
    assert.ok(recovery < 10_000, `Recovered after ${recovery} ms`);
    assert.match(survivor.stderr(), /lease expired/);
    // Conservation: what the hub accepted is what was processed; nothing dropped.
    assert.equal(await hub.stop(), 0);
    assert.deepEqual(summaryOf(hub), { read: 600, dropped: 0 });
  } finally {
    await stopAll([slow, hub, ...(survivor ? [survivor] : [])]);
    await deleteKeys(prefix);
    await removeFleetConfig(path);
  }
});

test("redis fleet: hub and processor ride out a Redis restart and lose nothing", async () => {
  const server = await startPrivateRedis();
  const prefix = randomPrefix("restart");
  const path = await writeFleetConfig({
    prefix,
    samples: 1500,
    emitBatch: 10,
    every: "10ms",
    brokerUrl: server.url,
  });
  const processor = await startRole("processor", path);
  const hub = await startRole("hub", path);
  try {
    await waitForSamples(prefix, 100, 20_000, logs({ hub, processor }));
    await server.restart(1000);
    const seen = await waitForSamples(prefix, 1500, 40_000, logs({ hub, processor }));
    assert.equal(seen.size, 1500);
    assert.equal(hub.child.pid > 0, true);
    assert.equal(await hub.stop(), 0, "hub did not crash");
    assert.equal(await processor.stop(), 0, "processor did not crash");
    assert.deepEqual(summaryOf(hub), { read: 1500, dropped: 0 }, "accepted = processed");
    assert.match(hub.stderr() + hub.stdout(), /Cannot reach Redis/);
  } finally {
    await stopAll([hub, processor]);
    await deleteKeys(prefix);
    await removeFleetConfig(path);
    await server.dispose();
  }
});

test("redis fleet: a processor stopped by SIGTERM mid-task returns its tasks to the queue", async () => {
  const prefix = randomPrefix("term");
  const path = await writeFleetConfig({ prefix, samples: 200, emitBatch: 10, every: "1ms" });
  const slow = await startRole("processor", path, { DELAY: "10s" }); // longer than the 2s grace
  const hub = await startRole("hub", path);
  let next: FleetProcess | undefined;
  try {
    const end = Date.now() + 20_000;
    // Each worker holds at least one task (an idle worker takes the first arrival alone).
    while (await inflight(prefix) < 2) {
      if (Date.now() > end) throw new Error(`Processor never held tasks\n${slow.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await slow.stop(), 0);
    assert.equal(await inflight(prefix), 0, "nothing left in the stopped processor's lists");
    assert.match(slow.stdout(), /tasks released/);
    next = await startRole("processor", path);
    const seen = await waitForSamples(prefix, 200, 20_000, logs({ hub, next }));
    assert.equal(seen.size, 200);
  } finally {
    await stopAll([slow, hub, ...(next ? [next] : [])]);
    await deleteKeys(prefix);
    await removeFleetConfig(path);
  }
});

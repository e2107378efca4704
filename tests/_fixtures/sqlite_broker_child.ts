/**
 * A second process on a sqlite broker file, for tests/sqlite_broker_test.ts:
 *
 * - `produce <file> <count> <batch> <prefix>`: enqueues `count` tasks in
 *   batches, prints `done`, closes.
 * - `hold <file> <count>`: reserves `count` tasks, marks them running,
 *   prints `{"held": [ids]}` and waits to be killed.
 * - `flood <file>`: enqueues batches of 5 tasks (`f-0`, `f-1`, …) without
 *   end, printing the last id of each batch once its enqueue resolved.
 *
 * @module
 */
import { createLogger, systemClock } from "../../core/mod.ts";
import { SqliteBroker, sqliteBrokerConfig } from "../../plugins/sqlite/mod.ts";

const [mode, file, ...rest] = Deno.args;
const logger = createLogger({ level: "warn", format: "json", sink: (l) => console.error(l) });
const broker = new SqliteBroker(sqliteBrokerConfig.parse({ path: file }), {
  name: "child",
  clock: systemClock,
  logger,
  signal: new AbortController().signal,
  dataDir: Deno.cwd(),
});

if (mode === "produce") {
  const [count, batch, prefix] = [Number(rest[0]), Number(rest[1]), rest[2]!];
  for (let i = 0; i < count; i += batch) {
    const tasks = [];
    for (let j = i; j < Math.min(count, i + batch); j++) {
      tasks.push({
        id: `${prefix}-${j}`,
        type: "test.task",
        payload: { n: j },
        attempts: 0,
        created_at: Date.now(),
      });
    }
    await broker.enqueue(tasks);
  }
  console.log("done");
  await broker.close();
  Deno.exit(0);
} else if (mode === "hold") {
  const count = Number(rest[0]);
  const held: string[] = [];
  const never = new AbortController().signal;
  while (held.length < count) {
    const deliveries = await broker.reserve("holder", count - held.length, never);
    await broker.started(deliveries);
    held.push(...deliveries.map((d) => d.task.id));
  }
  console.log(JSON.stringify({ held }));
  await new Promise(() => {}); // until SIGKILL
} else if (mode === "flood") {
  const payload = { samples: [{ device: "d", metric: "m", value: 1, ts: 1 }] };
  for (let n = 0;;) {
    const tasks = [];
    for (let j = 0; j < 5; j++) {
      tasks.push({ id: `f-${n++}`, type: "test.task", payload, attempts: 0, created_at: 1 });
    }
    await broker.enqueue(tasks);
    console.log(tasks.at(-1)!.id);
  }
} else {
  console.error(`Unknown mode "${mode}"`);
  Deno.exit(2);
}

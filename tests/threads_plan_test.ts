/**
 * Which pipelines `threads:` spreads over thread isolates, in-process: none
 * with `threads: 1`; not those on an in-process broker or with a handler
 * that must stay on the main isolate; the others in a thread that reports
 * ready and stops with the runtime.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";

const THREAD = new URL("./_fixtures/thread.ts", import.meta.url);
/** Where createRuntime() resolves `plugins:`; threads import them from the same place. */
const FIXTURES = new URL("./_fixtures/", import.meta.url).pathname;

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "th-plan-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const yaml = (dir: string, threads: number | string, broker: string, handler: string) => `
plugins: [./one_isolate.ts]
threads: ${threads}
brokers:
  q: ${
  broker === "sqlite" ? `{ type: sqlite, config: { path: ${dir}/broker.db } }` : "{ type: memory }"
}
handlers:
  h: { type: ${handler} }
pipelines:
  p: { via: q, handlers: [h] }
`;

function started(lines: Record<string, unknown>[]) {
  return lines.find((l) => l.msg === "Started" && l.thread === undefined)!;
}

test("threads: 1 starts no thread isolate: everything runs on the main one, as before", async () => {
  await withDir(async (dir) => {
    const { runtime, lines } = await createRuntime(yaml(dir, 1, "sqlite", "discard"), {
      threadModule: THREAD,
      baseDir: FIXTURES,
    });
    runtime.start();
    try {
      assert.equal(started(lines).threads, undefined);
      const checks = await runtime.readiness();
      assert.deepEqual(checks.filter((c) => c.name.startsWith("thread:")), []);
      assert.ok(!lines.some((l) => l.msg === "Pipeline runs on the main isolate only"));
    } finally {
      await runtime.stop();
    }
  });
});

/** Starts and stops a runtime with threads: 2; what it logged about pipeline "p". */
async function mainOnly(broker: string, handler: string) {
  let found: { started?: unknown; line?: Record<string, unknown> | undefined } = {};
  await withDir(async (dir) => {
    const { runtime, lines } = await createRuntime(yaml(dir, 2, broker, handler), {
      threadModule: THREAD,
      baseDir: FIXTURES,
    });
    runtime.start();
    await runtime.stop();
    found = {
      started: started(lines).threads,
      line: lines.find((l) => l.msg === "Pipeline runs on the main isolate only"),
    };
  });
  return found;
}

test("threads: a pipeline on the in-process broker stays on the main isolate, and the log says why", async () => {
  const { started, line } = await mainOnly("memory", "discard");
  assert.equal(started, undefined, "no thread started");
  assert.equal(line?.pipeline, "p");
  assert.match(String(line?.reason), /broker "q" lives in this isolate/);
});

test("threads: a handler that must stay on the main isolate keeps its pipeline there", async () => {
  const { started, line } = await mainOnly("sqlite", "one_isolate");
  assert.equal(started, undefined, "no thread started");
  assert.equal(line?.reason, 'handler "h": it holds a test resource one isolate may open');
});

test("threads: 2 on the sqlite broker starts a thread that reports ready and stops with the runtime", async () => {
  await withDir(async (dir) => {
    const { runtime, lines } = await createRuntime(yaml(dir, 2, "sqlite", "discard"), {
      threadModule: THREAD,
      baseDir: FIXTURES,
    });
    runtime.start();
    assert.equal(started(lines).threads, 2);
    await waitFor(
      async () => (await runtime.readiness()).find((c) => c.name === "thread:1")?.ready === true,
      `thread 1 ready (${JSON.stringify(lines.filter((l) => l.thread !== undefined))})`,
      30_000,
    );
    await runtime.stop();
    assert.ok(lines.some((l) => l.msg === "Thread stopped" && l.thread === 1), "thread stopped");
  });
});

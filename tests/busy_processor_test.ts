/**
 * A processor working through a backlog as fast as it can still lets timers
 * and I/O run: its admin API, broker heartbeats and thread messages must not
 * wait until the queue is empty.
 *
 * @module
 */
import assert from "node:assert/strict";
import { newTaskId, type Task } from "../core/task.ts";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";

Deno.test({
  name: "a processor draining a sqlite backlog lets timers and HTTP run before the backlog is done",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "th-busy-" });
    const tasks = 6000;
    try {
      const { runtime } = await createRuntime(`
threads: 1
brokers:
  q: { type: sqlite, config: { path: ${dir}/broker.db, capacity: ${tasks + 1} } }
handlers:
  drop: { type: discard }
pipelines:
  p: { via: q, handlers: [drop] }
`);
      const now = Date.now();
      const backlog: Task[] = Array.from({ length: tasks }, (_, t) => ({
        id: newTaskId(now),
        type: "telemetry.analyze",
        pipeline: "p",
        attempts: 0,
        created_at: now,
        checked: true,
        payload: {
          samples: Array.from(
            { length: 300 },
            (_, i) => ({ device: "d", metric: "m", value: i, ts: now, seq: t * 300 + i }),
          ),
        },
      }));
      await runtime.brokers.get("q")!.enqueue(backlog);
      const completed = () => runtime.metrics.totals("p").tasks_completed;
      // An HTTP server in this process stands for the admin API.
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        () => new Response("ok"),
      );
      try {
        const atTimer = new Promise<number>((resolve) => setTimeout(() => resolve(completed()), 0));
        runtime.start();
        const answered = fetch(`http://127.0.0.1:${server.addr.port}/`)
          .then((r) => r.text())
          .then(() => completed());
        const [timer, http] = [await atTimer, await answered];
        await waitFor(() => completed() === tasks, "the backlog drained", 60_000);
        await runtime.stop();
        assert.ok(timer < tasks, `the timer ran after ${timer} of ${tasks} tasks`);
        assert.ok(http < tasks, `the HTTP request was answered after ${http} of ${tasks} tasks`);
      } finally {
        await server.shutdown();
      }
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

import assert from "node:assert/strict";
import type { HandlerContext, Sample } from "../../core/mod.ts";
import { FakeClock, recordingMetrics, testContext } from "../../core/testing.ts";
import { openDatabase } from "../_db/mod.ts";
import store from "./mod.ts";

function taskContext(id: string): HandlerContext {
  return {
    task: { id, type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 },
    attempt: 1,
    pipeline: "main",
    signal: new AbortController().signal,
    clock: new FakeClock(),
    publish() {},
    published: () => [],
  };
}

Deno.test("store config rejects unknown keys and accepts the database fields", () => {
  assert.equal(store.config.safeParse({ urll: "x" }).success, false);
  assert.equal(
    store.config.parse({ url: "postgres://u@h/db", pool: 8 }).url,
    "postgres://u@h/db",
  );
});

Deno.test({
  name: "store writes a task's samples once to telemetry_data in PGlite, even when redelivered",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "th_store_" });
    const recorded = recordingMetrics("handler", "store");
    const handler = await store.create(
      store.config.parse({ data_dir: dir }),
      testContext({ metrics: recorded.metrics }),
    );
    try {
      const samples: Sample[] = Array.from({ length: 100 }, (_, i) => ({
        device: `d${i % 2}`,
        metric: "temperature",
        value: i / 4,
        ts: 1_700_000_000_000 + i,
        seq: i,
      }));
      assert.equal(await handler.handle(samples, taskContext("t1")), undefined, "samples pass on");
      await handler.handle(samples, taskContext("t1"));
      await handler.health?.();
      assert.equal(await recorded.value("store_samples_total", { result: "inserted" }), 100);
      assert.equal(await recorded.value("store_samples_total", { result: "duplicate" }), 100);
      const db = await openDatabase(store.config.parse({ data_dir: dir }), testContext());
      const { rows } = await db.query(
        "SELECT device, count(*)::int AS n, sum(value) AS total FROM telemetry_data GROUP BY 1 ORDER BY 1",
      );
      assert.deepEqual(rows, [
        { device: "d0", n: 50, total: 1225 / 2 },
        { device: "d1", n: 50, total: 1250 / 2 },
      ]);
      // Retention's delete runs on PGlite too: the 40 samples before the cut go, in chunks.
      assert.equal(await db.expireSamples(1_700_000_000_040, { chunk: 16 }), 40);
      const left = await db.query(
        "SELECT min(seq)::int AS first, count(*)::int AS n FROM telemetry_data",
      );
      await db.release();
      assert.deepEqual(left.rows, [{ first: 40, n: 60 }]);
    } finally {
      await handler.close?.();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

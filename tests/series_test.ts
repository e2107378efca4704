import assert from "node:assert/strict";
import type { Sample } from "../core/mod.ts";
import { testContext } from "../core/testing.ts";
import aggregate, { windowFor } from "../handlers/aggregate/mod.ts";
import store from "../handlers/store/mod.ts";
import { dropSchema, freshSchema, HAVE_POSTGRES, PG_URL } from "./_fixtures/pg_env.ts";
import { taskContext } from "./_fixtures/pg_aggregates.ts";

const T0 = 1_700_000_040_000; // a whole minute (UTC)

/** One sample a second for two minutes: values 0..119. */
const samples: Sample[] = Array.from({ length: 120 }, (_, i) => ({
  device: "boiler",
  metric: "temperature",
  value: i,
  ts: T0 + i * 1000,
  seq: i,
}));

Deno.test("windowFor() picks the longest window dividing the step", () => {
  assert.equal(windowFor([10_000, 60_000], 120_000), 60_000);
  assert.equal(windowFor([10_000, 60_000], 30_000), 10_000);
  assert.equal(windowFor([10_000, 60_000], 15_000), undefined);
  assert.equal(windowFor([10_000], 0), undefined);
});

/** Where a test's database lives: a fresh schema of the shared server, or a PGlite directory. */
interface Place {
  config: Record<string, unknown>;
  cleanup(): Promise<void>;
}

function postgresPlace(): Promise<Place> {
  const schema = freshSchema("series");
  return Promise.resolve({ config: { url: PG_URL, schema }, cleanup: () => dropSchema(schema) });
}

async function pglitePlace(): Promise<Place> {
  const dir = await Deno.makeTempDir({ prefix: "series_pglite_" });
  return { config: { data_dir: dir }, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

for (
  const [engine, place, ignore] of [
    ["PostgreSQL", postgresPlace, !HAVE_POSTGRES],
    ["PGlite", pglitePlace, false],
  ] as const
) {
  Deno.test({
    name: `store and aggregate series() read back samples, buckets and the latest points ` +
      `(${engine})`,
    ignore,
    async fn() {
      const where = await place();
      const s = await store.create(
        store.config.parse(where.config),
        testContext({ name: "store" }),
      );
      const a = await aggregate.create(
        aggregate.config.parse({ ...where.config, windows: ["10s", "1m"] }),
        testContext({ name: "aggregate" }),
      );
      try {
        await s.handle(samples, taskContext("t1"));
        await a.handle(samples, taskContext("t1"));
        const q = { device: "boiler", metric: "temperature", from: T0, to: T0 + 119_000 };

        const raw = await s.series!({ ...q, step: 0, limit: 10_000 });
        assert.equal(raw?.source, "samples");
        assert.equal(raw?.points.length, 120);
        assert.deepEqual(raw?.points[0], [T0, 0]);
        assert.equal(raw?.truncated, false);

        // The latest points when more match than the limit, still oldest first.
        const latest = await s.series!({ ...q, step: 0, limit: 3 });
        assert.deepEqual(latest?.points, [[T0 + 117_000, 117], [T0 + 118_000, 118], [
          T0 + 119_000,
          119,
        ]]);
        assert.equal(latest?.truncated, true);

        // Buckets from the samples and from the aggregates agree.
        const fromSamples = await s.series!({ ...q, step: 60_000, limit: 10_000 });
        const fromAggregates = await a.series!({ ...q, step: 60_000, limit: 10_000 });
        const expected = [[T0, 29.5, 0, 59, 60], [T0 + 60_000, 89.5, 60, 119, 60]];
        assert.deepEqual(fromSamples?.points, expected);
        assert.equal(fromAggregates?.source, "aggregates");
        assert.deepEqual(fromAggregates?.points, expected);

        // 30s buckets merged from the 10s windows.
        const merged = await a.series!({ ...q, step: 30_000, limit: 10_000 });
        assert.deepEqual(merged?.points[0], [T0, 14.5, 0, 29, 30]);
        assert.equal(merged?.points.length, 4);

        // No window divides 15s, and samples are not the aggregate's to serve.
        assert.equal(await a.series!({ ...q, step: 15_000, limit: 10 }), undefined);
        assert.equal(await a.series!({ ...q, step: 0, limit: 10 }), undefined);
      } finally {
        await s.close?.();
        await a.close?.();
        await where.cleanup();
      }
    },
  });
}

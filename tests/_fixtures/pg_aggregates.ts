/**
 * Helpers for aggregation tests: synthetic samples, a brute-force
 * aggregation to compare with, and reading `aggregates` back.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { HandlerContext, Sample } from "../../core/mod.ts";
import { FakeClock, handlerContext } from "../../core/testing.ts";

/** A handler context for task `id`. */
export function taskContext(id: string, clock = new FakeClock()): HandlerContext {
  return handlerContext({
    task: { id, type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 },
    pipeline: "main",
    clock,
  });
}

/** `n` samples over about `spanMs`, three devices and two metrics, seeded. */
export function syntheticSamples(n: number, spanMs: number, seed = 1): Sample[] {
  let x = seed;
  const rnd = () => (x = (x * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
  const t0 = 1_700_000_000_000;
  return Array.from({ length: n }, (_, i) => ({
    device: `dev-${i % 3}`,
    metric: i % 2 === 0 ? "temperature" : "pressure",
    value: Math.round((rnd() * 200 - 100) * 1000) / 1000,
    ts: t0 + Math.floor(rnd() * spanMs) + 0.25,
    seq: i,
  }));
}

/** One aggregate row, keyed `device/metric/window/start`. */
export interface AggregateRow {
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
}

/** Aggregates computed the obvious way. */
export function bruteForce(
  samples: readonly Sample[],
  windows: readonly number[],
): Map<string, AggregateRow> {
  const out = new Map<string, AggregateRow>();
  for (const w of windows) {
    for (const s of samples) {
      const key = `${s.device}/${s.metric}/${w}/${Math.floor(s.ts / w) * w}`;
      const row = out.get(key) ?? { count: 0, sum: 0, min: Infinity, max: -Infinity, mean: 0 };
      row.count++;
      row.sum += s.value;
      row.min = Math.min(row.min, s.value);
      row.max = Math.max(row.max, s.value);
      row.mean = row.sum / row.count;
      out.set(key, row);
    }
  }
  return out;
}

/** The SQL reading `aggregates` of `schema` in the shape of {@link bruteForce}. */
export function aggregatesSql(schema: string): string {
  return `SELECT device, metric, window_ms::float8 AS w,
      (extract(epoch FROM window_start) * 1000)::float8 AS start,
      count::float8 AS count, sum, min, max, mean
    FROM "${schema}".aggregates`;
}

/** Turns rows of {@link aggregatesSql} into a map like {@link bruteForce}'s. */
export function rowsToMap(rows: Record<string, unknown>[]): Map<string, AggregateRow> {
  return new Map(rows.map((r) => [
    `${r.device}/${r.metric}/${r.w}/${r.start}`,
    {
      count: r.count as number,
      sum: r.sum as number,
      min: r.min as number,
      max: r.max as number,
      mean: r.mean as number,
    },
  ]));
}

/** Asserts stored aggregates equal the expected ones: counts, min, max exact; sums to 1e-9. */
export function assertSameAggregates(
  actual: Map<string, AggregateRow>,
  expected: Map<string, AggregateRow>,
): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [key, e] of expected) {
    const a = actual.get(key)!;
    assert.equal(a.count, e.count, `${key} count`);
    assert.equal(a.min, e.min, `${key} min`);
    assert.equal(a.max, e.max, `${key} max`);
    assert.ok(Math.abs(a.sum - e.sum) <= 1e-9 * Math.max(1, Math.abs(e.sum)), `${key} sum`);
    assert.ok(Math.abs(a.mean - e.mean) <= 1e-9 * Math.max(1, Math.abs(e.mean)), `${key} mean`);
  }
}

/** Splits `samples` into tasks of `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

import assert from "node:assert/strict";
import type { Sample } from "../../core/mod.ts";
import aggregate, { partialsOf } from "./mod.ts";

const s = (device: string, ts: number, value: number, quality?: "bad"): Sample => ({
  device,
  metric: "t",
  value,
  ts,
  ...(quality ? { quality } : {}),
});

Deno.test("partialsOf() aligns windows to the epoch and keeps count, sum, min and max", () => {
  const samples = [s("a", 0, 1), s("a", 9_999.5, 3), s("a", 10_000, -2), s("b", 5, 7)];
  assert.deepEqual(partialsOf(samples, [10_000, 60_000]), [
    {
      device: "a",
      metric: "t",
      window_ms: 10_000,
      window_start: 0,
      count: 2,
      sum: 4,
      min: 1,
      max: 3,
    },
    {
      device: "a",
      metric: "t",
      window_ms: 60_000,
      window_start: 0,
      count: 3,
      sum: 2,
      min: -2,
      max: 3,
    },
    {
      device: "a",
      metric: "t",
      window_ms: 10_000,
      window_start: 10_000,
      count: 1,
      sum: -2,
      min: -2,
      max: -2,
    },
    {
      device: "b",
      metric: "t",
      window_ms: 10_000,
      window_start: 0,
      count: 1,
      sum: 7,
      min: 7,
      max: 7,
    },
    {
      device: "b",
      metric: "t",
      window_ms: 60_000,
      window_start: 0,
      count: 1,
      sum: 7,
      min: 7,
      max: 7,
    },
  ]);
});

Deno.test("partialsOf() leaves out bad-quality samples unless asked to include them", () => {
  const samples = [s("a", 0, 1), s("a", 1, 100, "bad")];
  assert.equal(partialsOf(samples, [1000])[0]!.max, 1);
  assert.equal(partialsOf(samples, [1000], true)[0]!.max, 100);
  assert.deepEqual(partialsOf([s("a", 1, 100, "bad")], [1000]), []);
});

Deno.test("aggregate config takes window durations and refuses a zero window", () => {
  const config = aggregate.config.parse({ windows: ["10s", "1m", "1h"] });
  assert.deepEqual(config.windows, [10_000, 60_000, 3_600_000]);
  assert.deepEqual(aggregate.config.parse({}).windows, [60_000]);
  assert.equal(config.ledger_retention, 86_400_000);
  const zero = aggregate.config.safeParse({ windows: ["0s"] });
  assert.equal(zero.success, false);
  assert.match(zero.error!.issues[0]!.message, /at least 1ms/);
  assert.equal(aggregate.config.safeParse({ windows: [] }).success, false);
});

Deno.test("partialsOf() adds a series that comes back later in the task to the same window", () => {
  const rows = partialsOf([s("a", 0, 1), s("b", 0, 5), s("a", 500, 3), s("a", 1000, 7)], [1000]);
  assert.deepEqual(rows.map((p) => [p.device, p.window_start, p.count, p.sum, p.min, p.max]), [
    ["a", 0, 2, 4, 1, 3],
    ["b", 0, 1, 5, 5, 5],
    ["a", 1000, 1, 7, 7, 7],
  ]);
});

import assert from "node:assert/strict";
import { PermanentError } from "./errors.ts";
import { decodeSamples, encodeSeries, type Sample, sampleProblem } from "./sample.ts";

const NOW = 1_700_000_000_000;

function rejects(payload: unknown, message: string): void {
  assert.throws(
    () => decodeSamples(payload, NOW),
    (error: unknown) => error instanceof PermanentError && error.message === message,
  );
}

Deno.test("decodeSamples() reads a single sample (the seed format)", () => {
  const sample = { device: "boiler", metric: "temp", value: 71.5, ts: 1000, unit: "C" };
  assert.deepEqual(decodeSamples(sample, NOW), [sample]);
});

Deno.test("decodeSamples() stamps a sample without ts with the current time", () => {
  assert.deepEqual(decodeSamples({ device: "d", metric: "m", value: 1 }, NOW), [
    { device: "d", metric: "m", value: 1, ts: NOW },
  ]);
});

Deno.test("decodeSamples() reads {samples} and a bare array", () => {
  const samples: Sample[] = [
    { device: "d", metric: "m", value: 1, ts: 1, seq: 1, tags: { site: "a" } },
    { device: "d", metric: "m", value: 2, ts: 2, seq: 2 },
  ];
  assert.deepEqual(decodeSamples({ samples }, NOW), samples);
  assert.deepEqual(decodeSamples(samples, NOW), samples);
  assert.deepEqual(decodeSamples({ samples: [] }, NOW), []);
});

Deno.test("decodeSamples() reads {series} columnar batches", () => {
  const payload = {
    series: [
      { device: "d1", metric: "temp", unit: "C", ts: [1, 2], values: [10, 11], seq: [5, 6] },
      { device: "d2", metric: "rpm", ts: [3], values: [900], tags: { line: "2" } },
    ],
  };
  assert.deepEqual(decodeSamples(payload, NOW), [
    { device: "d1", metric: "temp", unit: "C", value: 10, ts: 1, seq: 5 },
    { device: "d1", metric: "temp", unit: "C", value: 11, ts: 2, seq: 6 },
    { device: "d2", metric: "rpm", value: 900, ts: 3, tags: { line: "2" } },
  ]);
});

Deno.test("decodeSamples() refuses payloads that are not samples with a clear PermanentError", () => {
  rejects(null, "Payload must be an object");
  rejects("text", "Payload must be an object");
  rejects({ foo: 1 }, 'Payload must be a sample, {"samples": [...]} or {"series": [...]}');
  rejects({ device: "d", metric: "m" }, 'payload: "value" must be a finite number');
  rejects({ device: "", metric: "m", value: 1 }, 'payload: "device" must be a non-empty string');
  rejects(
    { device: "d", metric: "m", value: Infinity },
    'payload: "value" must be a finite number',
  );
  rejects(
    { device: "d", metric: "m", value: 1, ts: "now" },
    'payload: "ts" must be a finite number of milliseconds since the epoch',
  );
  rejects(
    { samples: [{ device: "d", metric: "m", value: 1 }, { device: "d", value: 1 }] },
    'samples[1]: "metric" must be a non-empty string',
  );
  rejects([42], "payload[0]: Sample must be an object");
  rejects(
    { device: "d", metric: "m", value: 1, tags: { a: 1 } },
    'payload: "tags" must be an object of strings',
  );
  rejects({ device: "d", metric: "m", value: 1, seq: 1.5 }, 'payload: "seq" must be an integer');
});

Deno.test("decodeSamples() refuses malformed series with the failing position", () => {
  rejects({ series: [1] }, "series[0]: must be an object");
  rejects(
    { series: [{ metric: "m", ts: [], values: [] }] },
    'series[0]: "device" must be a non-empty string',
  );
  rejects(
    { series: [{ device: "d", metric: "m", ts: [1, 2], values: [1] }] },
    'series[0]: "ts" and "values" must be arrays of equal length',
  );
  rejects(
    { series: [{ device: "d", metric: "m", ts: [1], values: [1], seq: [] }] },
    'series[0]: "seq" must be an array as long as "ts"',
  );
  rejects(
    { series: [{ device: "d", metric: "m", ts: [1, null], values: [1, 2] }] },
    "series[0].ts[1]: must be a finite number",
  );
  rejects(
    { series: [{ device: "d", metric: "m", ts: [1], values: ["x"] }] },
    "series[0].values[0]: must be a finite number",
  );
});

Deno.test("sampleProblem() is undefined for a valid sample", () => {
  assert.equal(sampleProblem({ device: "d", metric: "m", value: 0, ts: 0 }), undefined);
});

Deno.test("encodeSeries() groups by device, metric and unit and round-trips through decodeSamples()", () => {
  const samples: Sample[] = [
    { device: "d1", metric: "temp", unit: "C", value: 10, ts: 1, seq: 1 },
    { device: "d2", metric: "rpm", value: 900, ts: 1 },
    { device: "d1", metric: "temp", unit: "C", value: 11, ts: 2, seq: 2 },
    { device: "d1", metric: "temp", unit: "F", value: 52, ts: 2, seq: 3 },
    { device: "d2", metric: "rpm", value: 910, ts: 2, tags: { line: "2" } },
  ];
  const encoded = encodeSeries(samples);
  assert.deepEqual(encoded, {
    series: [
      { device: "d1", metric: "temp", unit: "C", ts: [1, 2], values: [10, 11], seq: [1, 2] },
      { device: "d2", metric: "rpm", ts: [1], values: [900] },
      { device: "d1", metric: "temp", unit: "F", ts: [2], values: [52], seq: [3] },
      { device: "d2", metric: "rpm", tags: { line: "2" }, ts: [2], values: [910] },
    ],
  });
  // Through JSON, as a serializing broker would carry it.
  const decoded = decodeSamples(JSON.parse(JSON.stringify(encoded)), NOW);
  const byKey = (s: Sample) => `${s.device}/${s.metric}/${s.unit}/${s.ts}`;
  const sorted = (list: Sample[]) => [...list].sort((a, b) => byKey(a).localeCompare(byKey(b)));
  assert.deepEqual(sorted(decoded), sorted(samples));
});

Deno.test("encodeSeries() keeps tags, quality and partial seq apart so a batch reads back whole", () => {
  const samples: Sample[] = [
    { device: "d", metric: "t", value: 1, ts: 1, seq: 1, tags: { line: "a" } },
    { device: "d", metric: "t", value: 2, ts: 2, tags: { line: "b" } },
    { device: "d", metric: "t", value: 3, ts: 3, seq: 3, quality: "bad", tags: { line: "a" } },
  ];
  const back = decodeSamples(JSON.parse(JSON.stringify(encodeSeries(samples))));
  const key = (s: Sample) => JSON.stringify([s.ts, s.value, s.seq, s.tags, s.quality]);
  assert.deepEqual(back.map(key).sort(), samples.map(key).sort());
});

Deno.test("encodeSeries() takes the fast path for plain batches and falls back for mixed units", () => {
  const plain: Sample[] = [
    { device: "a", metric: "t", value: 1, ts: 10, unit: "C", seq: 1 },
    { device: "b", metric: "t", value: 2, ts: 11, unit: "C", seq: 1 },
    { device: "a", metric: "t", value: 3, ts: 12, unit: "C", seq: 2 },
    { device: "a", metric: "p", value: 4, ts: 13 },
  ];
  assert.deepEqual(encodeSeries(plain), {
    series: [
      { device: "a", metric: "t", unit: "C", ts: [10, 12], values: [1, 3], seq: [1, 2] },
      { device: "b", metric: "t", unit: "C", ts: [11], values: [2], seq: [1] },
      { device: "a", metric: "p", ts: [13], values: [4] },
    ],
  });
  const mixed: Sample[] = [plain[0]!, { ...plain[2]!, unit: "F" }];
  assert.deepEqual(encodeSeries(mixed).series.map((s) => s.unit), ["C", "F"]);
});

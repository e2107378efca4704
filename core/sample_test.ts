import assert from "node:assert/strict";
import { PermanentError } from "./errors.ts";
import {
  compactPayload,
  decodeSamples,
  decodeTaskSamples,
  encodeSeries,
  type Sample,
  SAMPLE_LIMITS,
  sampleProblem,
  SampleStamper,
  taskSampleSeq,
} from "./sample.ts";

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

Deno.test("decodeSamples() stamps a sample without ts with the current time and a seq", () => {
  assert.deepEqual(decodeSamples({ device: "d", metric: "m", value: 1 }, NOW), [
    { device: "d", metric: "m", value: 1, ts: NOW, seq: taskSampleSeq("", 0) },
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
  rejects({ device: "d", metric: "m" }, 'payload: "value" must be a finite number (none given)');
  rejects({ device: "", metric: "m", value: 1 }, 'payload: "device" must be a non-empty string');
  rejects(
    { device: "d", metric: "m", value: Infinity },
    'payload: "value" must be a finite number, not Infinity',
  );
  rejects(
    { device: "d", metric: "m", value: 1, ts: "now" },
    'payload: "ts" must be a finite number of milliseconds since the epoch, from 1970 to 9999',
  );
  rejects(
    { samples: [{ device: "d", metric: "m", value: 1 }, { device: "d", value: 1 }] },
    'samples[1]: "metric" must be a non-empty string',
  );
  rejects([42], "payload[0]: Sample must be an object");
  rejects(
    { device: "d", metric: "m", value: 1, tags: { a: 1 } },
    'payload: "tags.a" must be a non-empty string',
  );
  rejects(
    { device: "d", metric: "m", value: 1, seq: 1.5 },
    'payload: "seq" must be an integer between -(2^53 - 1) and 2^53 - 1',
  );
});

Deno.test("decodeSamples() refuses malformed series with the failing position", () => {
  rejects({ series: [1] }, "series[0]: must be an object");
  rejects(
    { series: [{ metric: "m", ts: [1], values: [1] }] },
    'series[0][0]: "device" must be a non-empty string',
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
    'series[0][1]: "ts" must be a finite number of milliseconds since the epoch, from 1970 to 9999',
  );
  rejects(
    { series: [{ device: "d", metric: "m", ts: [1], values: ["x"] }] },
    'series[0][0]: "value" must be a finite number, not the string "x"',
  );
});

/** Every way a sample breaks the edge contract, with the reason given. */
const BAD_SAMPLES: [string, Record<string, unknown>, string][] = [
  ["ts 1e16", { ts: 1e16 }, '"ts" must be a finite number'],
  ["ts -1e15", { ts: -1e15 }, '"ts" must be a finite number'],
  ["ts NaN", { ts: NaN }, '"ts" must be a finite number'],
  ["ts past 9999", { ts: SAMPLE_LIMITS.maxTs + 1 }, '"ts" must be a finite number'],
  ["seq 1e20", { seq: 1e20 }, '"seq" must be an integer'],
  ["seq 2^53", { seq: 2 ** 53 }, '"seq" must be an integer'],
  ["NUL in device", { device: "a\u0000b" }, '"device" holds a control character'],
  ["newline in metric", { metric: "t\n" }, '"metric" holds a control character'],
  ["C1 control in unit", { unit: "\u0085C" }, '"unit" holds a control character'],
  ["DEL in tag value", { tags: { a: "x\u007f" } }, '"tags.a" holds a control character'],
  ["lone surrogate in device", { device: "a\ud800" }, '"device" holds a lone surrogate'],
  ["lone surrogate in tag key", { tags: { ["k\udc00"]: "v" } }, '"tags" holds a lone surrogate'],
  ["3,000-character device", { device: "d".repeat(3000) }, '"device" must be at most 256 bytes'],
  ["257 bytes of metric", { metric: "m".repeat(257) }, '"metric" must be at most 256 bytes'],
  ["86 three-byte characters", { metric: "\u20ac".repeat(86) }, '"metric" must be at most 256'],
  ["65-byte unit", { unit: "u".repeat(65) }, '"unit" must be at most 64 bytes'],
  ["empty unit", { unit: "" }, '"unit" must be a non-empty string'],
  [
    "33 tags",
    { tags: Object.fromEntries([...Array(33)].map((_, i) => [`t${i}`, "v"])) },
    "at most 32 tags",
  ],
  ["long tag value", { tags: { a: "v".repeat(257) } }, '"tags.a" must be at most 256 bytes'],
  ["long tag key", { tags: { ["k".repeat(129)]: "v" } }, '"tags" must be at most 128 bytes'],
  ["tags an array", { tags: ["a"] }, '"tags" must be an object of strings'],
  ["quality 5", { quality: 5 }, '"quality" must be "good" or "bad"'],
  ["quality nested arrays", { quality: [[[]]] }, '"quality" must be "good" or "bad"'],
  ["value a string", { value: "1" }, '"value" must be a finite number'],
  ["value null", { value: null }, '"value" must be a finite number'],
];

for (const [name, change, reason] of BAD_SAMPLES) {
  Deno.test(`sampleProblem() refuses ${name}`, () => {
    const problem = sampleProblem({ device: "d", metric: "m", value: 1, ts: 1, ...change });
    assert.ok(problem?.includes(reason), `"${problem}" should say ${reason}`);
  });
}

Deno.test("sampleProblem() accepts the limits themselves", () => {
  const tags = Object.fromEntries([...Array(32)].map((_, i) => [`t${i}`, "v".repeat(256)]));
  const edge = {
    device: "d".repeat(256),
    metric: "\u20ac".repeat(85) + "x",
    value: -0,
    ts: SAMPLE_LIMITS.maxTs,
    seq: -(2 ** 53 - 1),
    unit: "°".repeat(32),
    tags,
    quality: "bad",
  };
  assert.equal(sampleProblem(edge), undefined);
  assert.equal(sampleProblem({ device: "😀", metric: "m", value: 1, ts: 0 }), undefined);
});

Deno.test("SampleStamper gives samples without ts the time and distinct seqs, and keeps the rest", () => {
  const stamper = new SampleStamper(() => 0.5);
  const a = { device: "d", metric: "m", value: 1 } as Sample;
  const b = { device: "d", metric: "m", value: 2 } as Sample;
  const c = { device: "d", metric: "m", value: 3, seq: 7 } as Sample;
  const d = { device: "d", metric: "m", value: 4, ts: 5 } as Sample;
  for (const s of [a, b, c, d]) stamper.stamp(s, NOW);
  assert.equal(a.ts, NOW);
  assert.equal(b.ts, NOW);
  assert.notEqual(a.seq, b.seq);
  assert.ok(Number.isSafeInteger(a.seq) && Number.isSafeInteger(b.seq));
  assert.equal(c.seq, 7, "a producer's seq is kept");
  assert.deepEqual(
    d,
    { device: "d", metric: "m", value: 4, ts: 5 },
    "a sample with ts is untouched",
  );
  const other = new SampleStamper(() => 0.25);
  assert.notEqual(other.next(), new SampleStamper(() => 0.5).next(), "processes draw apart");
});

Deno.test("decodeTaskSamples() derives the identity of ts-less samples from the task, the same on redelivery", () => {
  const task = () => ({
    id: "foreign-1",
    created_at: 1_600_000_000_000,
    payload: {
      samples: [{ device: "d", metric: "m", value: 1 }, { device: "d", metric: "m", value: 2 }],
    },
  });
  const first = decodeTaskSamples(task());
  const again = decodeTaskSamples(task());
  assert.deepEqual(first, again);
  assert.equal(first.samples[0]!.ts, 1_600_000_000_000);
  assert.notEqual(first.samples[0]!.seq, first.samples[1]!.seq);
  const otherTask = decodeTaskSamples({ ...task(), id: "foreign-2" });
  assert.notEqual(otherTask.samples[0]!.seq, first.samples[0]!.seq);
});

Deno.test("decodeTaskSamples() refuses bad items alone and keeps the good ones", () => {
  const bad = { device: "d\u0000", metric: "m", value: 1, ts: 1 };
  const { samples, refused } = decodeTaskSamples({
    id: "t",
    created_at: 0,
    payload: { samples: [{ device: "a", metric: "m", value: 1, ts: 1 }, bad, 42] },
  });
  assert.deepEqual(samples, [{ device: "a", metric: "m", value: 1, ts: 1 }]);
  assert.deepEqual(refused, [
    { where: "samples[1]", reason: '"device" holds a control character', item: bad },
    { where: "samples[2]", reason: "Sample must be an object", item: 42 },
  ]);
});

Deno.test("decodeTaskSamples() trusts a checked task's samples without looking at them", () => {
  const samples = [{ device: "d", metric: "m", value: 1, ts: 1 }];
  const decoded = decodeTaskSamples({
    id: "t",
    created_at: 0,
    checked: true,
    payload: { samples },
  });
  assert.equal(decoded.samples, samples, "the very array: no copy, no checks");
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

Deno.test("sampleProblem() checks each field's own limit although it remembers accepted text", () => {
  const name = "n".repeat(100);
  assert.equal(sampleProblem({ device: name, metric: "m", value: 1 }), undefined);
  assert.equal(sampleProblem({ device: name, metric: "m", value: 1 }), undefined);
  assert.match(
    sampleProblem({ device: "d", metric: "m", value: 1, unit: name }) ?? "",
    /"unit" must be at most 64 bytes/,
  );
});

Deno.test("compactPayload() turns {samples} into columnar series that decode to the same samples", () => {
  const samples = [
    { device: "a", metric: "t", value: 1, ts: 10, seq: 1 },
    { device: "a", metric: "t", value: 2, ts: 11, seq: 2 },
    { device: "b", metric: "t", value: 3, ts: 12, unit: "C" },
  ];
  const compact = compactPayload({ samples });
  assert.ok(compact && typeof compact === "object" && "series" in compact);
  assert.deepEqual(decodeSamples(compact), samples);
  const single = { device: "a", metric: "t", value: 1, ts: 1 };
  assert.equal(compactPayload(single), single, "a single sample is kept as is");
  const odd = { samples: [{ device: "a" }] };
  assert.equal(compactPayload(odd), odd, "a batch the worker must reject is kept as is");
});

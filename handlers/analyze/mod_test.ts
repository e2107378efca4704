import assert from "node:assert/strict";
import type { HandlerContext, Sample } from "../../core/mod.ts";
import { FakeClock, handlerContext, recordingLogger, testContext } from "../../core/testing.ts";
import analyze from "./mod.ts";
import { conversion } from "./_units.ts";

async function setup(input: unknown) {
  const clock = new FakeClock();
  const { logger, lines } = recordingLogger();
  const handler = await analyze.create(
    analyze.config.parse(input),
    testContext({ name: "analyze", clock, logger }),
  );
  const ctx: HandlerContext = handlerContext({
    task: { id: "t1", type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 },
    pipeline: "main",
    clock,
  });
  const handle = async (samples: readonly Sample[]) =>
    (await handler.handle(samples, ctx)) ?? samples;
  return { handle, lines };
}

const at = (device: string, metric: string, value: number, ts: number, unit?: string): Sample =>
  unit === undefined ? { device, metric, value, ts } : { device, metric, value, ts, unit };

function close(actual: number | undefined, expected: number, what = "value") {
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) < 1e-6,
    `${what}: expected ${expected}, got ${actual}`,
  );
}

Deno.test("analyze converts units through the table", () => {
  const cases: [string, string, number, number][] = [
    ["°F", "°C", 212, 100],
    ["degF", "C", 32, 0],
    ["K", "°C", 273.15, 0],
    ["kPa", "bar", 250, 2.5],
    ["psi", "bar", 145.03773773, 10],
    ["hPa", "kPa", 1013.25, 101.325],
    ["°C", "K", -273.15, 0],
  ];
  for (const [from, to, input, expected] of cases) {
    const c = conversion(from, to);
    assert.equal(typeof c, "function", `${from}→${to}`);
    close((c as (v: number) => number)(input), expected, `${from}→${to}`);
  }
  assert.match(conversion("kPa", "°C") as string, /Cannot convert "kPa" \(pressure\)/);
  assert.match(conversion("furlong", "°C") as string, /Unknown unit "furlong"/);
});

Deno.test("analyze applies scale, offset and unit conversion and sets the output unit", async () => {
  const { handle } = await setup({
    calibrations: [
      { device: "boiler_*", metric: "temperature", scale: 2, offset: 1, to: "°C" },
      { metric: "pressure", from: "kPa", to: "bar" },
    ],
  });
  const input = [
    at("boiler_1", "temperature", 105.5, 1, "°F"), // 2*105.5+1 = 212 °F = 100 °C
    at("boiler_1", "pressure", 250, 1), // no unit on the sample: "from" says kPa
    at("room", "temperature", 20, 1, "°C"), // no calibration applies
  ];
  const frozen = structuredClone(input);
  const out = await handle(input);
  close(out[0]!.value, 100);
  assert.equal(out[0]!.unit, "°C");
  close(out[1]!.value, 2.5);
  assert.equal(out[1]!.unit, "bar");
  assert.equal(out[2], input[2], "untouched samples are passed as they are");
  assert.deepEqual(input, frozen, "input samples are not modified");
});

Deno.test("analyze rejects unknown and incompatible units in its config", () => {
  const bad = analyze.config.safeParse({
    calibrations: [{ metric: "t", to: "furlong" }, { metric: "p", from: "kPa", to: "K" }],
  });
  assert.equal(bad.success, false);
  const messages = bad.error!.issues.map((i) => i.message).join("\n");
  assert.match(messages, /Unknown unit "furlong"/);
  assert.match(messages, /Cannot convert "kPa" \(pressure\) to "K" \(temperature\)/);
});

Deno.test("analyze passes a sample unconverted and warns once when its unit cannot convert", async () => {
  const { handle, lines } = await setup({ calibrations: [{ metric: "t", to: "°C" }] });
  const out = await handle([at("d", "t", 5, 1, "furlong"), at("d", "t", 6, 2, "furlong")]);
  assert.deepEqual(out.map((s) => [s.value, s.unit]), [[5, "furlong"], [6, "furlong"]]);
  assert.equal(lines.filter((l) => String(l.msg).includes('Unknown unit "furlong"')).length, 1);
});

Deno.test("analyze marks out-of-range samples bad, or drops them with drop_bad", async () => {
  const ranges = [{ metric: "humidity", min: 0, max: 100 }];
  const input = [
    at("d", "humidity", 50, 1),
    at("d", "humidity", 120, 2),
    at("d", "humidity", -1, 3),
    at("d", "humidity", 100, 4),
  ];
  const marked = await (await setup({ ranges })).handle(input);
  assert.deepEqual(marked.map((s) => s.quality), [undefined, "bad", "bad", undefined]);
  assert.equal(input[1]!.quality, undefined);
  const dropped = await (await setup({ ranges, drop_bad: true })).handle(input);
  assert.deepEqual(dropped.map((s) => s.value), [50, 100]);
});

Deno.test("analyze checks ranges after calibration, in output units", async () => {
  const { handle } = await setup({
    calibrations: [{ metric: "t", from: "°F", to: "°C" }],
    ranges: [{ metric: "t", max: 150 }],
  });
  const out = await handle([at("d", "t", 300, 1), at("d", "t", 302.1, 2)]); // 148.9 °C, 150.06 °C
  assert.deepEqual(out.map((s) => s.quality), [undefined, "bad"]);
});

Deno.test("analyze derives the rate of change per second per device and metric", async () => {
  const { handle } = await setup({ derive_rate: true, rate_metrics: ["temp*"] });
  const out = await handle([
    at("a", "temperature", 10, 1000, "°C"),
    at("b", "temperature", 0, 1000, "°C"),
    at("a", "temperature", 12, 1500, "°C"),
    at("a", "pressure", 1, 1500),
    at("b", "temperature", 3, 4000, "°C"),
  ]);
  const rates = out.filter((s) => s.metric === "temperature_rate");
  assert.deepEqual(
    rates.map((s) => [s.device, s.value, s.unit, s.ts]),
    [["a", 4, "°C/s", 1500], ["b", 1, "°C/s", 4000]],
  );
  assert.equal(out.filter((s) => s.metric === "pressure_rate").length, 0);
  // The next batch continues from the last sample of each series.
  const next = await handle([at("a", "temperature", 11, 2500, "°C")]);
  assert.deepEqual(next.map((s) => [s.metric, s.value]), [["temperature", 11], [
    "temperature_rate",
    -1,
  ]]);
});

Deno.test("analyze gives a redelivered batch the same rates except for each series' first", async () => {
  const { handle } = await setup({ derive_rate: true });
  await handle([at("a", "t", 0, 0)]);
  const batch = [at("a", "t", 1, 1000), at("a", "t", 3, 2000), at("a", "t", 6, 3000)];
  const first = (await handle(batch)).filter((s) => s.metric === "t_rate").map((s) => s.value);
  const again = (await handle(batch)).filter((s) => s.metric === "t_rate").map((s) => s.value);
  assert.deepEqual(first, [1, 2, 3]);
  assert.deepEqual(again, [2, 3]);
});

Deno.test("analyze skips bad samples when deriving rates", async () => {
  const { handle } = await setup({ derive_rate: true, ranges: [{ metric: "t", max: 100 }] });
  const out = await handle([at("a", "t", 0, 0), at("a", "t", 500, 1000), at("a", "t", 4, 2000)]);
  assert.deepEqual(out.filter((s) => s.metric === "t_rate").map((s) => s.value), [2]);
});

Deno.test("analyze keeps at most max_series series, forgetting the idlest", async () => {
  const { handle } = await setup({ derive_rate: true, max_series: 2 });
  await handle([at("a", "t", 0, 0), at("b", "t", 0, 0), at("c", "t", 0, 0)]); // "a" evicted
  await handle([at("c", "t", 1, 1000)]); // "b" is now the idlest
  const out = await handle([at("a", "t", 1, 1000), at("c", "t", 2, 2000)]);
  assert.deepEqual(out.filter((s) => s.metric === "t_rate").map((s) => s.device), ["c"]);
});

import assert from "node:assert/strict";
import type { DeviceIO, Sample } from "../../core/mod.ts";
import { FakeClock, recordingLogger, testContext } from "../../core/testing.ts";
import simulated, { autoTick, MAX_BATCH_PER_METRIC, METRIC_DEFAULTS } from "./mod.ts";

const QUIET = { spike_probability: 0, stuck_probability: 0 };
const FLAT = { amplitude: 0, noise: 0, drift: 0, spike_probability: 0, stuck_probability: 0 };

interface Harness {
  clock: FakeClock;
  batches: Sample[][];
  samples(metric?: string): Sample[];
  done: Promise<void>;
  controller: AbortController;
  ups: number;
  lines: Record<string, unknown>[];
  /** Replaces what `emit` returns. */
  emitResult: (batch: Sample[]) => void | Promise<void>;
}

async function start(input: unknown, name = "line-1", clock = new FakeClock()): Promise<Harness> {
  const config = simulated.config.parse(input);
  const controller = new AbortController();
  const { logger, lines } = recordingLogger();
  const device = await simulated.create(
    config,
    testContext({ name, clock, logger, signal: controller.signal }),
  );
  const h: Harness = {
    clock,
    batches: [],
    samples: (metric) =>
      h.batches.flat().filter((s) => metric === undefined || s.metric === metric),
    done: Promise.resolve(),
    controller,
    ups: 0,
    lines,
    emitResult: () => undefined,
  };
  const io: DeviceIO = {
    emit(input) {
      // The simulated device stamps every sample with its own ts.
      const batch = input as Sample[];
      h.batches.push(batch);
      return h.emitResult(batch);
    },
    up() {
      h.ups++;
    },
    down() {},
    readError() {},
    signal: controller.signal,
  };
  h.done = device.run(io);
  return h;
}

async function stop(h: Harness): Promise<void> {
  h.controller.abort();
  await h.done;
}

/** Advances in `steps` equal moves, like a timer that fires that often. */
async function advance(clock: FakeClock, total: number, steps: number): Promise<void> {
  for (let i = 0; i < steps; i++) await clock.advance(total / steps);
}

Deno.test("simulated emits identical samples for the same seed and clock", async () => {
  const a = await start({ rate: 20, tick: "1s" }, "press-7");
  const b = await start({ rate: 20, tick: "1s" }, "press-7");
  await advance(a.clock, 30_000, 30);
  await advance(b.clock, 30_000, 30);
  await stop(a);
  await stop(b);
  assert.equal(a.samples().length, 3 * (20 * 30 + 1));
  assert.deepEqual(a.samples(), b.samples());
  assert.equal(a.ups, 1);
});

Deno.test("simulated samples do not depend on how late the timers fire", async () => {
  const a = await start({ rate: 50 });
  const b = await start({ rate: 50 });
  await advance(a.clock, 5_000, 50); // on time
  // Late timers: 500 ms to 1 s instead of 100 ms.
  for (const late of [700, 650, 900, 750, 1000, 500, 500]) await b.clock.advance(late);
  await stop(a);
  await stop(b);
  assert.deepEqual(a.samples(), b.samples());
});

Deno.test("simulated devices with different names give different series", async () => {
  const a = await start({ rate: 10, tick: "1s" }, "boiler");
  const b = await start({ rate: 10, tick: "1s" }, "chiller");
  await advance(a.clock, 5_000, 5);
  await advance(b.clock, 5_000, 5);
  await stop(a);
  await stop(b);
  const va = a.samples("temperature").map((s) => s.value);
  const vb = b.samples("temperature").map((s) => s.value);
  assert.equal(va.length, vb.length);
  assert.notDeepEqual(va, vb);
  assert.ok(a.samples().every((s) => s.device === "boiler"));
});

Deno.test("simulated seed overrides the seed derived from the name", async () => {
  const a = await start({ rate: 10, tick: "1s", seed: 42 }, "boiler");
  const b = await start({ rate: 10, tick: "1s", seed: 42 }, "chiller");
  await advance(a.clock, 2_000, 2);
  await advance(b.clock, 2_000, 2);
  await stop(a);
  await stop(b);
  assert.deepEqual(
    a.samples().map((s) => s.value),
    b.samples().map((s) => s.value),
  );
});

Deno.test("simulated keeps the exact rate over a simulated minute with irregular timers", async () => {
  const h = await start({ rate: 7, tick: "1s" });
  const t0 = h.clock.now();
  for (const step of [333, 1, 999, 250, 4000, 17]) await h.clock.advance(step);
  await h.clock.set(t0 + 60_000);
  await stop(h);
  for (const metric of ["temperature", "pressure", "humidity"]) {
    const series = h.samples(metric);
    assert.equal(series.length, 7 * 60 + 1, metric);
    series.forEach((s, i) => {
      assert.equal(s.seq, i);
      assert.ok(Math.abs(s.ts - (t0 + (i * 1000) / 7)) < 1e-6, `${metric} ts[${i}]`);
    });
  }
});

Deno.test("simulated at a low rate sleeps until the next sample is due", async () => {
  const h = await start({ rate: 0.1, metrics: ["humidity"] });
  const t0 = h.clock.now();
  await advance(h.clock, 60_000, 6);
  await stop(h);
  assert.deepEqual(h.samples().map((s) => s.ts - t0), [
    0,
    10_000,
    20_000,
    30_000,
    40_000,
    50_000,
    60_000,
  ]);
  assert.equal(h.batches.length, 7);
});

Deno.test("simulated at a high rate emits every sample once in bounded batches", async () => {
  const h = await start({ rate: 1_000_000, metrics: ["pressure"] });
  assert.equal(autoTick(1_000_000), 10);
  await advance(h.clock, 1_000, 100);
  await stop(h);
  const series = h.samples();
  assert.equal(series.length, 1_000_001);
  assert.ok(h.batches.every((b) => b.length <= MAX_BATCH_PER_METRIC));
  assert.equal(series.at(-1)!.seq, 1_000_000);
});

Deno.test("simulated values stay in plausible ranges", async () => {
  const h = await start({
    rate: 2,
    tick: "1m",
    metrics: { temperature: QUIET, pressure: QUIET, humidity: QUIET },
  });
  await advance(h.clock, 3_600_000, 60);
  await stop(h);
  const range = (metric: string) => {
    const values = h.samples(metric).map((s) => s.value);
    return [Math.min(...values), Math.max(...values)];
  };
  const [tMin, tMax] = range("temperature");
  assert.ok(tMin! >= 20 && tMax! <= 80, `temperature ${tMin}..${tMax}`);
  const [pMin, pMax] = range("pressure");
  assert.ok(pMin! >= 95 && pMax! <= 110, `pressure ${pMin}..${pMax}`);
  const [hMin, hMax] = range("humidity");
  assert.ok(hMin! >= 0 && hMax! <= 100, `humidity ${hMin}..${hMax}`);
  assert.deepEqual(
    [...new Set(h.samples().map((s) => `${s.metric} ${s.unit}`))],
    ["temperature °C", "pressure kPa", "humidity %RH"],
  );
});

Deno.test("simulated clamps humidity to 0–100 %RH", async () => {
  const h = await start({
    rate: 10,
    tick: "10s",
    metrics: { humidity: { base: 95, amplitude: 20, period: "10s", ...QUIET } },
  });
  await advance(h.clock, 20_000, 2);
  await stop(h);
  const values = h.samples().map((s) => s.value);
  assert.ok(values.every((v) => v >= 0 && v <= 100));
  assert.ok(values.filter((v) => v === 100).length > 10);
});

Deno.test("simulated drifts the level per hour", async () => {
  const h = await start({ rate: 1, tick: "10m", metrics: { pressure: { ...FLAT, drift: -2 } } });
  await advance(h.clock, 2 * 3_600_000, 12);
  await stop(h);
  const series = h.samples();
  assert.equal(series[0]!.value, 101.3);
  assert.ok(Math.abs(series.at(-1)!.value - 97.3) < 1e-9);
});

Deno.test("simulated converts units", async () => {
  const h = await start({
    rate: 1,
    units: { temperature: "F", pressure: "bar" },
    metrics: { temperature: { ...FLAT, base: 100 }, pressure: FLAT },
  });
  await h.clock.advance(2_000);
  await stop(h);
  const [t, p] = h.batches[0]!;
  assert.equal(t!.value, 212);
  assert.equal(t!.unit, "°F");
  assert.ok(Math.abs(p!.value - 1.013) < 1e-12);
  assert.equal(p!.unit, "bar");
});

Deno.test("simulated spikes occur at the configured probability and magnitude", async () => {
  const h = await start({
    rate: 100,
    tick: "10s",
    limit: 20_000,
    metrics: { temperature: { ...FLAT, spike_probability: 0.05, spike_magnitude: 10 } },
  });
  await advance(h.clock, 200_000, 20);
  await stop(h);
  const values = h.samples().map((s) => s.value);
  assert.equal(values.length, 20_000);
  const spikes = values.filter((v) => v !== 50);
  assert.ok(spikes.every((v) => v === 40 || v === 60));
  // Expected 1000, standard deviation ~31.
  assert.ok(spikes.length > 850 && spikes.length < 1150, `${spikes.length} spikes`);
  assert.ok(spikes.some((v) => v === 40) && spikes.some((v) => v === 60));
});

Deno.test("simulated stuck stretches repeat the last value exactly for their duration", async () => {
  const h = await start({
    rate: 10,
    tick: "100s",
    limit: 20_000,
    metrics: {
      humidity: { noise: 1, spike_probability: 0, stuck_probability: 0.01, stuck_duration: "1s" },
    },
  });
  await advance(h.clock, 2_000_000, 20);
  await stop(h);
  const values = h.samples().map((s) => s.value);
  assert.equal(values.length, 20_000);
  // With noise, equal neighbours only come from a stuck sensor.
  const runs: number[] = [];
  let run = 1;
  for (let i = 1; i < values.length; i++) {
    if (values[i] === values[i - 1]) run++;
    else {
      if (run > 1) runs.push(run);
      run = 1;
    }
  }
  // Each stretch: the last good sample and 10 repeats (1 s at 10/s).
  assert.ok(runs.every((r) => r === 11), `run lengths ${[...new Set(runs)]}`);
  // Expected ~182 stretches (0.01 per good sample, ~18,200 good samples).
  assert.ok(runs.length > 130 && runs.length < 240, `${runs.length} stretches`);
});

Deno.test("simulated stops at the limit and idles until stopped", async () => {
  const h = await start({ rate: 10, limit: 25 });
  let finished = false;
  h.done.then(() => finished = true);
  await advance(h.clock, 10_000, 20);
  assert.equal(h.samples("temperature").length, 25);
  assert.equal(h.samples().length, 75);
  assert.equal(h.lines.at(-1)!.msg, "Sample limit reached; idling until stopped");
  assert.equal(finished, false);
  await stop(h);
  assert.equal(finished, true);
});

Deno.test("simulated pauses while emit applies backpressure, then catches up", async () => {
  const h = await start({ rate: 10, metrics: ["temperature"] });
  let release = () => {};
  h.emitResult = () => new Promise<void>((resolve) => release = resolve);
  await h.clock.advance(100); // second batch: blocked
  const blockedAt = h.batches.length;
  await advance(h.clock, 800, 8);
  assert.equal(h.batches.length, blockedAt, "no batch while blocked");
  h.emitResult = () => undefined;
  release();
  await h.clock.advance(100);
  await stop(h);
  const seqs = h.samples().map((s) => s.seq);
  assert.deepEqual(seqs, [...Array(11).keys()], "caught up without gaps");
});

Deno.test("simulated skips samples older than the catch-up window after a stall", async () => {
  const h = await start({ rate: 10, metrics: ["temperature"] });
  let release = () => {};
  h.emitResult = () => new Promise<void>((resolve) => release = resolve);
  await h.clock.advance(100); // emits seq 1, blocks
  await h.clock.advance(5_000);
  h.emitResult = () => undefined;
  release();
  await h.clock.advance(100);
  await stop(h);
  const seqs = h.samples().map((s) => s.seq!);
  // At 5.2 s: due up to seq 52; only the last 1 s (10 samples) is emitted.
  assert.deepEqual(seqs, [0, 1, ...Array.from({ length: 10 }, (_, i) => 43 + i)]);
  const warning = h.lines.find((l) => l.level === "warn");
  assert.equal(warning?.skipped_per_metric, 41);
});

Deno.test("simulated stops promptly when the signal aborts", async () => {
  const h = await start({ rate: 1 });
  await h.clock.advance(1_500);
  h.controller.abort();
  await h.done; // resolves without moving the clock
  assert.equal(h.clock.pending, 0);
  assert.equal(h.samples("pressure").length, 2);
});

Deno.test("simulated stops when aborted while emit is blocked", async () => {
  const h = await start({ rate: 1 });
  h.emitResult = () => new Promise<void>(() => {});
  await h.clock.advance(1_000);
  await stop(h);
  assert.equal(h.samples("pressure").length, 2);
});

Deno.test("simulated config has defaults for every field", () => {
  const config = simulated.config.parse({});
  assert.equal(config.rate, 1);
  assert.equal(config.tick, undefined);
  assert.equal(config.start_seq, 0);
  assert.deepEqual(config.units, { temperature: "°C", pressure: "kPa" });
  assert.deepEqual(
    config.metrics,
    (["temperature", "pressure", "humidity"] as const).map((metric) => ({
      metric,
      ...METRIC_DEFAULTS[metric],
    })),
  );
});

Deno.test("simulated config accepts a list of metrics and per-metric overrides", () => {
  assert.deepEqual(
    simulated.config.parse({ metrics: ["humidity"] }).metrics,
    [{ metric: "humidity", ...METRIC_DEFAULTS.humidity }],
  );
  const [pressure] = simulated.config.parse({
    metrics: { pressure: { base: 250, period: "1h", stuck_duration: "2s" } },
  }).metrics;
  assert.deepEqual(pressure, {
    ...METRIC_DEFAULTS.pressure,
    metric: "pressure",
    base: 250,
    period: 3_600_000,
    stuck_duration: 2_000,
  });
  assert.equal(simulated.config.parse({ rate: 2_000_000, tick: "5ms" }).tick, 5);
});

Deno.test("simulated config rejects bad values with messages naming the problem", () => {
  const messages = (input: unknown) => {
    const result = simulated.config.safeParse(input);
    assert.equal(result.success, false);
    return result.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  assert.match(messages({ metrics: ["temprature"] })[0]!, /^metrics: 0: Invalid option/);
  assert.match(messages({ metrics: { temprature: {} } })[0]!, /^metrics: Unrecognized key/);
  assert.match(
    messages({ metrics: { humidity: { base: "high" } } })[0]!,
    /^metrics: humidity\.base: Invalid input: expected number/,
  );
  assert.match(messages({ metrics: { humidity: { min: 5, max: 5 } } })[0]!, /"min" must be less/);
  assert.match(messages({ metrics: ["humidity", "humidity"] })[0]!, /listed once/);
  assert.match(messages({ metrics: 3 })[0]!, /list of metric names or an object/);
  assert.match(messages({ rate: 0 })[0]!, /^rate: /);
  assert.match(messages({ rate: 20_000_000 })[0]!, /^rate: /);
  assert.match(messages({ tick: "0ms" })[0]!, /^tick: /);
  assert.match(messages({ sample_rate: 1 })[0]!, /Unrecognized key/);
});

Deno.test("simulated temperature units are set as the samples carry them, C and F taken for °C and °F", () => {
  const units = (temperature: string) =>
    simulated.config.parse({ units: { temperature } }).units.temperature;
  assert.equal(units("°C"), "°C");
  assert.equal(units("C"), "°C");
  assert.equal(units("°F"), "°F");
  assert.equal(units("F"), "°F");
  assert.equal(units("K"), "K");
  assert.equal(simulated.config.safeParse({ units: { temperature: "kelvin" } }).success, false);
});

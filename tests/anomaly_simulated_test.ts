import assert from "node:assert/strict";
import {
  type AnomalyEvent,
  createEventBus,
  type HandlerContext,
  type Sample,
  silentLogger,
} from "../core/mod.ts";
import { FakeClock, handlerContext, testContext } from "../core/testing.ts";
import anomaly from "../handlers/anomaly/mod.ts";
import { METRIC_DEFAULTS } from "../plugins/simulated/mod.ts";
import { SeriesGenerator } from "../plugins/simulated/_series.ts";

const RATE = 10; // samples per second
const STUCK_RUN = 100; // 10 s at 10 samples/s

/** One simulated hour of the `simulated` device's temperature, with spikes and stuck stretches. */
function simulatedHour(): Sample[] {
  const generator = new SeriesGenerator({
    device: "boiler",
    metric: "temperature",
    unit: "°C",
    scale: 1,
    offset: 0,
    params: { ...METRIC_DEFAULTS.temperature, stuck_probability: 0.0005, stuck_duration: 10_000 },
    rate: RATE,
    seed: 7,
    startSeq: 0,
  });
  const out: Sample[] = [];
  generator.generate(out, 1_700_000_000_000, 0, 3600 * RATE);
  return out;
}

Deno.test("anomaly finds the simulated device's spikes and stuck stretches with few false positives", async () => {
  const samples = simulatedHour();
  const v = samples.map((s) => s.value);
  // Ground truth from the series itself: a spike stands 12 (about half its magnitude) away from
  // both neighbours; a stuck stretch is a run of identical values.
  const spikes: number[] = [];
  for (let i = 1; i < v.length - 1; i++) {
    if (Math.abs(v[i]! - v[i - 1]!) > 12 && Math.abs(v[i]! - v[i + 1]!) > 12) spikes.push(i);
  }
  const stuckStarts: number[] = [];
  for (let i = 1, run = 1; i < v.length; i++) {
    run = v[i] === v[i - 1] ? run + 1 : 1;
    if (run === 30) stuckStarts.push(i - 29);
  }
  assert.ok(spikes.length >= 10 && stuckStarts.length >= 5, "the hour holds both kinds");

  const clock = new FakeClock(samples[0]!.ts);
  const events = createEventBus(silentLogger);
  const found: AnomalyEvent[] = [];
  events.subscribe("anomaly", (a) => found.push(a as AnomalyEvent));
  const handler = await anomaly.create(
    anomaly.config.parse({
      store: false,
      rules: [{ kind: "zscore" }, { kind: "stuck", samples: 30 }],
    }),
    testContext({ clock, events }),
  );
  const ctx: HandlerContext = handlerContext({
    task: { id: "t", type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 },
    pipeline: "main",
    clock,
  });
  for (let i = 0; i < samples.length; i += 500) {
    await handler.handle(samples.slice(i, i + 500), ctx);
  }
  await handler.close?.();

  const tsOf = (i: number) => samples[i]!.ts;
  const zscore = new Set(found.filter((a) => a.rule === "zscore").map((a) => a.ts));
  for (const i of spikes) assert.ok(zscore.has(tsOf(i)), `spike at sample ${i} found`);
  const stuck = found.filter((a) => a.rule === "stuck").map((a) => a.ts);
  assert.deepEqual(stuck, stuckStarts.map((i) => tsOf(i + 29)), "each stuck stretch found once");

  // Anything else the z-score flags must be explained: the jump when a stuck sensor recovers.
  const explained = (ts: number) =>
    spikes.some((i) => tsOf(i) === ts) ||
    stuckStarts.some((i) => ts >= tsOf(i) && ts <= tsOf(i + STUCK_RUN + 70));
  const unexplained = [...zscore].filter((ts) => !explained(ts)).length;
  const rate = unexplained / samples.length;
  console.log(
    `Simulated hour: ${spikes.length} spikes, ${stuckStarts.length} stuck stretches; ` +
      `${unexplained} unexplained z-score anomalies in ${samples.length} samples`,
  );
  assert.ok(rate < 0.005, `False-positive rate ${rate} not below 0.5%`);
});

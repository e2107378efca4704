import assert from "node:assert/strict";
import {
  type AnomalyEvent,
  type AnomalyResolvedEvent,
  createEventBus,
  gaussian,
  type HandlerContext,
  RetryableError,
  type Sample,
  seededRandom,
  silentLogger,
} from "../../core/mod.ts";
import { FakeClock, recordingMetrics, testContext } from "../../core/testing.ts";
import { type AnomalySink, createAnomalyEngine } from "./_handler.ts";
import anomaly from "./mod.ts";

const START = 1_700_000_000_000;

interface Setup {
  rules?: unknown[];
  max_series?: number;
  sink?: AnomalySink;
}

function setup(options: Setup = {}) {
  const clock = new FakeClock(START);
  const events = createEventBus(silentLogger);
  const bus: AnomalyEvent[] = [];
  const resolved: AnomalyResolvedEvent[] = [];
  events.subscribe("anomaly", (a) => bus.push(a as AnomalyEvent));
  events.subscribe("anomaly.resolved", (r) => resolved.push(r as AnomalyResolvedEvent));
  const controller = new AbortController();
  const recorded = recordingMetrics("handler", "anomaly");
  const config = anomaly.config.parse({
    store: false,
    ...(options.rules ? { rules: options.rules } : {}),
    ...(options.max_series ? { max_series: options.max_series } : {}),
  });
  const handler = createAnomalyEngine(
    { ...config, sink: options.sink },
    testContext({ clock, events, signal: controller.signal, metrics: recorded.metrics }),
  );
  const published: AnomalyEvent[] = [];
  const handle = async (samples: readonly Sample[]) => {
    const ctx: HandlerContext = {
      task: { id: "t", type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 },
      attempt: 1,
      pipeline: "main",
      signal: controller.signal,
      clock,
      publish: (topic, item) => {
        if (topic === "anomaly") published.push(item as AnomalyEvent);
      },
      published: () => [],
    };
    assert.equal(await handler.handle(samples, ctx), undefined, "samples pass on unchanged");
  };
  const stop = async () => {
    controller.abort();
    await handler.close?.();
  };
  return { clock, bus, resolved, published, handle, handler, stop, metric: recorded.value };
}

const sample = (value: number, ts: number, device = "boiler", metric = "temperature"): Sample => ({
  device,
  metric,
  value,
  ts,
});

/** Clean Gaussian noise, one sample per second from START. */
function noise(n: number, seed: number, mean = 50, sd = 1): number[] {
  const rng = seededRandom(seed);
  return Array.from({ length: n }, () => mean + sd * gaussian(rng));
}

/** Feeds values as one sample per second, `batch` per task, moving the clock along. */
async function feed(
  s: ReturnType<typeof setup>,
  values: readonly number[],
  batch = 10,
  device = "boiler",
): Promise<void> {
  for (let i = 0; i < values.length; i += batch) {
    const chunk = values.slice(i, i + batch).map((v, j) =>
      sample(v, s.clock.now() + j * 1000, device)
    );
    await s.handle(chunk);
    await s.clock.advance(chunk.length * 1000);
  }
}

Deno.test("anomaly finds every injected spike, drift, stuck stretch and silence", async () => {
  const s = setup({
    rules: [{ kind: "zscore" }, { kind: "ewma" }, { kind: "stuck", samples: 30 }, {
      kind: "silent",
      after: "1m",
    }],
  });
  const values = noise(3000, 42);
  const spikes = [300, 700, 1100, 2300];
  for (const i of spikes) values[i] = values[i]! + (i === 700 ? -8 : 8);
  for (let i = 1500; i < 1800; i++) values[i] = values[i]! + 4 * (i - 1500) / 300; // to +4σ
  for (let i = 2000; i < 2040; i++) values[i] = values[1999]!; // stuck for 40 samples
  const t0 = s.clock.now();
  const tsOf = (i: number) => t0 + i * 1000;

  await feed(s, values.slice(0, 2500));
  await s.clock.advance(120_000); // the device falls silent for two minutes
  const silentAt = s.clock.now();
  await feed(s, values.slice(2500));

  const found = (rule: string, from: number, to: number) =>
    s.bus.filter((a) => a.rule === rule && a.ts >= tsOf(from) && a.ts <= tsOf(to));
  for (const i of spikes) {
    assert.equal(found("zscore", i, i).length, 1, `spike at sample ${i}`);
  }
  const drift = found("ewma", 1500, 1800);
  assert.ok(drift.length >= 1, "drift found by the EWMA chart");
  assert.ok(drift[0]!.ts < tsOf(1650), "drift found before it reached 2σ");
  const stuck = found("stuck", 2000, 2040);
  assert.equal(stuck.length, 1, "stuck stretch found once");
  assert.equal(stuck[0]!.ts, tsOf(2028), "stuck at the 30th unchanged sample");
  const silent = s.bus.filter((a) => a.rule === "silent");
  assert.equal(silent.length, 1);
  assert.equal(silent[0]!.device, "boiler");
  assert.equal(silent[0]!.metric, "*");
  assert.ok(silent[0]!.ts <= silentAt, "silence found while it lasted");
  assert.ok(
    s.resolved.some((r) => r.rule === "silent" && r.anomaly_id === silent[0]!.id),
    "silence resolved when samples return",
  );
  assert.ok(!s.published.some((a) => a.rule === "silent"), "silence is only on the bus");
  assert.ok(
    s.resolved.some((r) => r.rule === "stuck" && r.ts === tsOf(2040)),
    "stuck resolved when the value moves",
  );
  // Every anomaly in a task went to later handlers as well.
  assert.deepEqual(
    s.published.map((a) => a.id),
    s.bus.filter((a) => a.rule !== "silent").map((a) => a.id),
  );
  // Each anomaly and each resolution is counted once, by rule.
  for (const rule of ["zscore", "ewma", "stuck", "silent"]) {
    assert.equal(
      await s.metric("anomalies_total", { rule, device: "boiler", handler: "anomaly" }),
      s.bus.filter((a) => a.rule === rule).length,
      `anomalies_total of ${rule}`,
    );
    assert.equal(
      await s.metric("anomalies_resolved_total", { rule }),
      s.resolved.filter((r) => r.rule === rule).length,
      `anomalies_resolved_total of ${rule}`,
    );
  }
  await s.stop();
});

Deno.test("anomaly flags fewer than 0.5% of clean Gaussian samples", async () => {
  let samples = 0, anomalies = 0;
  const byRule: Record<string, number> = {};
  for (const seed of [1, 2, 3, 4]) {
    const s = setup({
      rules: [{ kind: "zscore" }, { kind: "ewma" }, { kind: "stuck", samples: 30 }],
    });
    const values = noise(10_000, seed, 20, 2.5);
    await s.handle(values.map((v, i) => sample(v, START + i * 1000)));
    samples += values.length;
    anomalies += s.bus.length;
    for (const a of s.bus) byRule[a.rule] = (byRule[a.rule] ?? 0) + 1;
    await s.stop();
  }
  const rate = anomalies / samples;
  console.log(
    `False positives: ${anomalies} in ${samples} samples (${(rate * 100).toFixed(3)}%)`,
    byRule,
  );
  assert.ok(rate < 0.005, `False-positive rate ${rate} not below 0.5%`);
});

Deno.test("anomaly threshold rules flag above, below and outside a band once per excursion", async () => {
  const s = setup({
    rules: [
      { kind: "threshold", metric: "temperature", above: 90, severity: "critical" },
      { kind: "threshold", metric: "pressure", below: 1, above: 3 },
      { kind: "threshold", name: "freezing", device: "cold*", below: 0, severity: "info" },
    ],
  });
  await s.handle([
    sample(80, 1),
    sample(95, 2),
    sample(99, 3), // still the same excursion
    sample(85, 4), // resolved
    sample(91, 5), // a new one
    sample(2, 1, "boiler", "pressure"),
    sample(0.5, 2, "boiler", "pressure"),
    sample(3.5, 3, "boiler", "pressure"), // still outside the band
    sample(-1, 1, "cold_room"),
  ]);
  assert.deepEqual(
    s.bus.map((
      a,
    ) => [a.rule, a.device, a.metric, a.value, a.expected_low, a.expected_high, a.severity]),
    [
      ["threshold:temperature", "boiler", "temperature", 95, null, 90, "critical"],
      ["threshold:temperature", "boiler", "temperature", 91, null, 90, "critical"],
      ["threshold:pressure", "boiler", "pressure", 0.5, 1, 3, "warning"],
      ["freezing", "cold_room", "temperature", -1, 0, null, "info"],
    ],
  );
  assert.equal(s.bus[0]!.score, 5);
  assert.equal(s.bus[0]!.detail, "Value 95 is above 90");
  assert.deepEqual(s.resolved.map((r) => [r.rule, r.ts]), [["threshold:temperature", 4]]);
  await s.stop();
});

Deno.test("anomaly rate rule flags changes faster than max_per_second", async () => {
  const s = setup({ rules: [{ kind: "rate", max_per_second: 2 }] });
  await s.handle([
    sample(10, 0),
    sample(11, 1000),
    sample(20, 2000),
    sample(20, 4000),
    sample(12, 8000),
  ]);
  assert.deepEqual(s.bus.map((a) => [a.value, a.score]), [[20, 4.5]]);
  assert.deepEqual(s.resolved.map((r) => r.ts), [4000]);
  await s.stop();
});

Deno.test("anomaly stuck rule flags a value unchanged for a duration", async () => {
  const s = setup({ rules: [{ kind: "stuck", duration: "10s", tolerance: 0.01 }] });
  await s.handle([1, 5, 5, 5.005, 5, 5].map((v, i) => sample(v, i * 4000)));
  assert.deepEqual(s.bus.map((a) => [a.ts, a.score]), [[16_000, 4]]);
  await s.stop();
});

Deno.test("anomaly ids are deterministic and a redelivered task publishes and stores them again", async () => {
  const stored: AnomalyEvent[] = [];
  const sink: AnomalySink = {
    insertAnomalies: (rows) => (stored.push(...rows), Promise.resolve()),
    release: () => {},
  };
  const s = setup({ rules: [{ kind: "threshold", above: 10 }], sink });
  const batch = [sample(1, 1000), sample(11, 2000), sample(1, 3000)];
  await s.handle(batch);
  await s.handle(batch); // redelivery
  assert.equal(s.bus.length, 1, "the bus saw the anomaly once");
  assert.equal(s.published.length, 2, "later handlers see it on every attempt");
  assert.deepEqual(stored.map((a) => a.id), [s.bus[0]!.id, s.bus[0]!.id]);
  const again = setup({ rules: [{ kind: "threshold", above: 10 }] });
  await again.handle(batch);
  assert.equal(again.bus[0]!.id, s.bus[0]!.id, "another process gives the same id");
  await s.stop();
  await again.stop();
});

Deno.test("anomaly turns a storage failure into a retryable error and retries silent ones", async () => {
  let failing = true;
  const stored: AnomalyEvent[] = [];
  const resolvedIds: string[] = [];
  const sink: AnomalySink = {
    insertAnomalies: (rows) =>
      failing
        ? Promise.reject(new Error("connection refused"))
        : (stored.push(...rows), Promise.resolve()),
    resolveAnomaly: (id) => (resolvedIds.push(id), Promise.resolve()),
    release: () => {},
  };
  const s = setup({
    rules: [{ kind: "threshold", above: 10 }, { kind: "silent", after: "5s" }],
    sink,
  });
  await assert.rejects(
    s.handle([sample(11, START)]),
    (e) =>
      e instanceof RetryableError && /Cannot store 1 anomalies: connection refused/.test(e.message),
  );
  await s.clock.advance(6000); // silent, but storage still fails
  assert.equal(s.bus.filter((a) => a.rule === "silent").length, 1);
  failing = false;
  await s.clock.advance(1000); // the next check stores the kept one
  assert.deepEqual(stored.map((a) => a.rule), ["silent"]);
  await s.handle([sample(11, START), sample(1, START + 8000)]); // redelivery; then normal again
  assert.deepEqual(stored.map((a) => a.rule), ["silent", "threshold"]);
  assert.deepEqual(resolvedIds.sort(), stored.map((a) => a.id).sort(), "both conditions resolved");
  await s.stop();
});

Deno.test("anomaly keeps state for at most max_series series, forgetting the idlest", async () => {
  const s = setup({ rules: [{ kind: "stuck", samples: 3 }], max_series: 2 });
  await s.handle([sample(1, 1, "a"), sample(1, 2, "a")]);
  await s.handle([sample(1, 1, "b"), sample(1, 1, "c")]); // "a" forgotten
  await s.handle([sample(1, 3, "a"), sample(1, 4, "a")]); // counts from 1 again
  assert.equal(s.bus.length, 0);
  await s.handle([sample(1, 5, "a")]);
  assert.deepEqual(s.bus.map((a) => [a.device, a.ts]), [["a", 5]]);
  assert.equal(await s.metric("anomaly_state", { state: "series" }), 2);
  assert.equal(await s.metric("anomaly_state_evicted_total", { state: "series" }), 2);
  await s.stop();
  assert.equal(await s.metric("anomaly_state", { state: "series" }), 0, "freed on close");
});

Deno.test("anomaly judges a restarted device whose seq counts from 0 again", async () => {
  const s = setup({ rules: [{ kind: "threshold", above: 90 }] });
  await s.handle(Array.from({ length: 10 }, (_, i) => ({ ...sample(50, START + i), seq: i })));
  // The device restarted: later timestamps, seq from 0, and a reading over the limit.
  await s.handle([{ ...sample(95, START + 60_000), seq: 0 }]);
  assert.deepEqual(s.bus.map((a) => [a.value, a.ts]), [[95, START + 60_000]]);
  // A redelivery of the first task is still recognised (same seq and timestamps).
  await s.handle(Array.from({ length: 10 }, (_, i) => ({ ...sample(50, START + i), seq: i })));
  assert.equal(s.bus.length, 1);
  await s.stop();
});

Deno.test("anomaly ignores samples analyze marked bad", async () => {
  const s = setup({ rules: [{ kind: "threshold", above: 10 }] });
  await s.handle([{ ...sample(500, 1), quality: "bad" }]);
  assert.equal(s.bus.length, 0);
  await s.stop();
});

Deno.test("anomaly default rules are zscore, stuck and silent for every series", () => {
  const { rules } = anomaly.config.parse({});
  assert.deepEqual(rules.map((r) => [r.kind, r.device, r.metric]), [
    ["zscore", "*", "*"],
    ["stuck", "*", "*"],
    ["silent", "*", "*"],
  ]);
});

Deno.test("anomaly config rejects duplicate rule names and incomplete rules", () => {
  const result = anomaly.config.safeParse({
    store: false,
    rules: [{ kind: "zscore" }, { kind: "zscore", window: 10 }, { kind: "threshold" }, {
      kind: "stuck",
    }],
  });
  assert.equal(result.success, false);
  const messages = result.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  assert.ok(
    messages.includes(
      'rules.1.name: Rule name "zscore" is also the name of rule 0; give one a "name"',
    ),
    messages.join("\n"),
  );
  assert.ok(messages.some((m) => m.includes('A threshold rule needs "above", "below" or both')));
  assert.ok(messages.some((m) => m.includes('A stuck rule needs "samples", "duration" or both')));
});

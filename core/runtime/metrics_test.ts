import assert from "node:assert/strict";
import { recordingMetrics } from "../testing.ts";
import {
  labelValue,
  MAX_LABEL_LENGTH,
  MAX_UNROUTED_TASK_TYPES,
  RuntimeMetrics,
} from "./metrics.ts";

Deno.test("plugin metrics carry the component's label and add up across instances", async () => {
  const runtime = new RuntimeMetrics();
  const first = runtime.pluginMetrics("handler", "alert_ops");
  const second = runtime.pluginMetrics("handler", "alert_ops");
  const other = runtime.pluginMetrics("handler", "alert_dev");
  const help = "Alerts by sink and outcome";
  first.counter("alerts_total", help, ["sink", "outcome"]).inc({ sink: "log", outcome: "sent" });
  second.counter("alerts_total", help, ["sink", "outcome"]).inc(
    { sink: "log", outcome: "sent" },
    2,
  );
  other.counter("alerts_total", help, ["sink", "outcome"]).inc({ sink: "hook", outcome: "failed" });
  const text = await runtime.metrics();
  assert.match(text, /# HELP telemetry_alerts_total Alerts by sink and outcome/);
  assert.match(text, /telemetry_alerts_total\{handler="alert_ops",sink="log",outcome="sent"\} 3/);
  assert.match(
    text,
    /telemetry_alerts_total\{handler="alert_dev",sink="hook",outcome="failed"\} 1/,
  );
});

Deno.test("plugin gauges and histograms record, with unset labels empty", async () => {
  const recorded = recordingMetrics("device", "press");
  const gauge = recorded.metrics.gauge("buffer_bytes", "Bytes buffered", ["port"]);
  gauge.set({ port: "a" }, 10);
  gauge.inc({ port: "a" }, 5);
  gauge.dec({ port: "a" });
  assert.equal(await recorded.value("buffer_bytes", { port: "a", device: "press" }), 14);
  const histogram = recorded.metrics.histogram("frame_seconds", "Frame time", [], [0.1, 1]);
  histogram.observe({}, 0.05);
  histogram.observe({}, 2);
  assert.equal(await recorded.value("frame_seconds"), 2, "observations counted");
  assert.match(
    await recorded.text(),
    /telemetry_frame_seconds_bucket\{le="0.1",device="press"\} 1/,
  );
  const counter = recorded.metrics.counter("reads_total", "Reads", ["kind"]);
  counter.inc();
  assert.match(await recorded.text(), /telemetry_reads_total\{device="press"\} 1/);
});

Deno.test("plugin metrics refuse bad names, reserved labels and clashes with clear errors", () => {
  const runtime = new RuntimeMetrics();
  const m = runtime.pluginMetrics("handler", "mine");
  assert.throws(() => m.counter("Widgets_total", "x"), /lower_snake_case/);
  assert.throws(() => m.counter("telemetry_widgets_total", "x"), /without the telemetry_ prefix/);
  assert.throws(() => m.counter("widgets", "x"), /ends in "_total"/);
  assert.throws(() => m.gauge("depth", "x", ["handler"]), /"handler" cannot be a label name/);
  assert.throws(() => m.gauge("depth", "x", ["bad-label"]), /cannot be a label name/);
  m.gauge("depth", "x", ["queue"]);
  assert.throws(
    () => m.gauge("depth", "x", ["other"]),
    /"telemetry_depth" is already registered as a gauge with labels \["handler","queue"\]/,
  );
  assert.throws(() => m.counter("tasks_total", "x"), /already registered as a counter/);
});

Deno.test("labelValue() replaces control characters and lone surrogates, and cuts long values", () => {
  assert.equal(labelValue("boiler-1.hall_b"), "boiler-1.hall_b");
  assert.equal(labelValue("kessel 🔥 ü"), "kessel 🔥 ü", "valid UTF-8 is kept");
  assert.equal(
    labelValue("a\u0000b\r\n\u001b[31m\u007f\u0085"),
    "a\uFFFDb\uFFFD\uFFFD\uFFFD[31m\uFFFD\uFFFD",
  );
  assert.equal(labelValue("x\uD800y\uDFFF"), "x\uFFFDy\uFFFD", "lone surrogates");
  const long = labelValue("é".repeat(1000));
  assert.equal([...long].length, MAX_LABEL_LENGTH);
  assert.ok(long.endsWith("é…"));
  const emoji = labelValue("😀".repeat(MAX_LABEL_LENGTH + 1));
  assert.ok(emoji.isWellFormed(), "no surrogate pair is cut in half");
});

Deno.test("100,000 distinct device names keep the exposition bounded: past the cap they share _other, reported once", async () => {
  const metrics = new RuntimeMetrics();
  const overflows: Array<[string, number]> = [];
  metrics.configure({
    devices: ["press"],
    maxDevices: 100,
    onOverflow: (device, max) => overflows.push([device, max]),
  });
  const ingested = (device: string) =>
    metrics.fastCounter(metrics.samplesIngested, "main", metrics.deviceLabel(device));
  for (let i = 0; i < 100_000; i++) ingested(`sensor-${i}`).inc();
  ingested("press").inc(7); // configured: always its own series, even past the cap
  const text = await metrics.metrics();
  const series = text.split("\n").filter((l) => l.startsWith("telemetry_samples_ingested_total"));
  assert.equal(series.length, 100 + 2, "100 admitted, press and _other");
  assert.ok(text.length < 16_000, `exposition is ${text.length} bytes`);
  assert.match(text, /telemetry_samples_ingested_total\{pipeline="main",device="sensor-99"\} 1\n/);
  assert.doesNotMatch(text, /device="sensor-100"/);
  assert.match(text, /telemetry_samples_ingested_total\{pipeline="main",device="_other"\} 99900\n/);
  assert.match(text, /telemetry_samples_ingested_total\{pipeline="main",device="press"\} 7\n/);
  assert.deepEqual(overflows, [["sensor-100", 100]]);
  assert.equal(metrics.deviceLabel("sensor-5"), "sensor-5", "admitted devices keep their label");
  assert.equal(metrics.deviceLabel("_other"), "_other");
});

Deno.test("plugin metrics sanitize label values and put device labels under the runtime's cap", async () => {
  const metrics = new RuntimeMetrics();
  metrics.configure({ devices: [], maxDevices: 1 });
  const anomalies = metrics.pluginMetrics("handler", "anomaly")
    .counter("anomalies_total", "Anomalies", ["device", "rule"]);
  anomalies.inc({ device: "a\u0000b", rule: "r\u001b[2J\uD800" });
  anomalies.inc({ device: "second", rule: "ok" });
  const text = await metrics.metrics();
  assert.match(
    text,
    /telemetry_anomalies_total\{handler="anomaly",device="a\uFFFDb",rule="r\uFFFD\[2J\uFFFD"\} 1/,
  );
  assert.match(text, /telemetry_anomalies_total\{handler="anomaly",device="_other",rule="ok"\} 1/);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
});

Deno.test("zeroHub(), zeroProcessor() and zeroDevice() create their counters at 0", async () => {
  const metrics = new RuntimeMetrics();
  metrics.configure({ devices: ["press"], maxDevices: 0 });
  metrics.zeroHub("main", "telemetry.analyze");
  metrics.zeroProcessor("main", ["telemetry.analyze", "audit"]);
  metrics.zeroDevice("main", "press");
  const text = await metrics.metrics();
  for (
    const line of [
      'telemetry_samples_ingested_total{pipeline="main",device="press"} 0',
      'telemetry_samples_dropped_total{pipeline="main",reason="queue_full_oldest"} 0',
      'telemetry_samples_dropped_total{pipeline="main",reason="queue_full_newest"} 0',
      'telemetry_samples_dropped_total{pipeline="main",reason="closed"} 0',
      'telemetry_samples_dropped_total{pipeline="main",reason="broker_unavailable"} 0',
      'telemetry_samples_processed_total{pipeline="main"} 0',
      'telemetry_tasks_enqueued_total{pipeline="main",type="telemetry.analyze"} 0',
      'telemetry_tasks_total{pipeline="main",type="audit",outcome="dead_lettered"} 0',
      'telemetry_tasks_total{pipeline="main",type="telemetry.analyze",outcome="completed"} 0',
      'telemetry_device_up{device="press"} 0',
      'telemetry_device_read_errors_total{device="press"} 0',
      'telemetry_device_restarts_total{device="press"} 0',
    ]
  ) assert.ok(text.includes(`${line}\n`), line);
});

Deno.test("task types no pipeline routes are sanitized and capped in telemetry_tasks_total", async () => {
  const metrics = new RuntimeMetrics();
  metrics.zeroProcessor("main", ["telemetry.analyze"]);
  for (let i = 0; i < 1000; i++) {
    metrics.tasks.labels("main", `foreign.${i}`, "dead_lettered").inc();
  }
  metrics.tasks.labels("main", "bad\u0000type", "dead_lettered").inc();
  metrics.tasks.labels({ pipeline: "main", type: "telemetry.analyze", outcome: "completed" }).inc();
  const text = await metrics.metrics();
  const series = text.split("\n").filter((l) => l.startsWith("telemetry_tasks_total{"));
  assert.equal(series.length, 4 + MAX_UNROUTED_TASK_TYPES + 1, "routed, 100 others, _other");
  assert.match(
    text,
    /telemetry_tasks_total\{pipeline="main",type="_other",outcome="dead_lettered"\} 901\n/,
  );
  assert.match(
    text,
    /telemetry_tasks_total\{pipeline="main",type="telemetry.analyze",outcome="completed"\} 1\n/,
  );
  assert.ok(!text.includes("\u0000"));
});

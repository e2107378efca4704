import assert from "node:assert/strict";
import { recordingMetrics } from "../testing.ts";
import { RuntimeMetrics } from "./metrics.ts";

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

// Charts: one stored series over a chosen range, as samples or as buckets
// (mean with a min–max band) from the aggregates, following new data.

import { api } from "./api.js";
import { $, attempt, el, plural } from "./ui.js";

/** Bucket lengths "auto" picks from, in ms (what `step` accepts). */
const STEPS = [10_000, 60_000, 300_000, 900_000, 3_600_000];
/** "auto" shows samples up to this range, then buckets of at most ~400 per range. */
const SAMPLES_UP_TO_MS = 900_000;
const MAX_BUCKETS = 400;

let plot;
let plotKey = "";
let request = 0;
let xRange = [0, 1];
let metricsOf = new Map(); // device -> [metric]

/** The range to show, in ms since epoch: the last so long, or the custom from and to. */
function chosenRange() {
  const chosen = $("#chart-range").value;
  if (chosen !== "custom") {
    const to = Date.now();
    return { from: to - Number(chosen), to };
  }
  // datetime-local values are local times without a zone, as `new Date()` reads them.
  return {
    from: new Date($("#chart-from").value).getTime(),
    to: new Date($("#chart-to").value).getTime(),
  };
}

/** A time as a datetime-local input shows it (local time, to the second). */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

$("#chart-range").addEventListener("change", () => {
  const custom = $("#chart-range").value === "custom";
  for (const label of document.querySelectorAll("#chart-form .custom-range")) {
    label.hidden = !custom;
  }
  if (custom) {
    // Start from the hour before now, and stop following: a fixed range does not move.
    const now = Date.now();
    if (!$("#chart-from").value) $("#chart-from").value = localInput(now - 3_600_000);
    if (!$("#chart-to").value) $("#chart-to").value = localInput(now);
    $("#chart-live").checked = false;
  }
});

/** The step to ask for: "" for samples. */
function stepFor(range) {
  const chosen = $("#chart-step").value;
  if (chosen !== "auto") return chosen;
  if (range <= SAMPLES_UP_TO_MS) return "";
  const step = STEPS.find((s) => range / s <= MAX_BUCKETS) ?? STEPS.at(-1);
  return String(step);
}

function fillMetrics() {
  const metrics = metricsOf.get($("#chart-device").value.trim()) ??
    [...new Set([...metricsOf.values()].flat())];
  $("#metric-names").replaceChildren(...metrics.map((m) => el("option", "", { value: m })));
}

/** Fills the device and metric suggestions, and a first choice. */
export async function enter() {
  const { devices } = await api("/api/v1/overview");
  metricsOf = new Map(devices.map((d) => [d.name, d.last.map((v) => v.metric)]));
  $("#device-names").replaceChildren(...devices.map((d) => el("option", "", { value: d.name })));
  const first = devices.find((d) => d.last.length > 0);
  if (first && !$("#chart-device").value && !$("#chart-metric").value) {
    $("#chart-device").value = first.name;
    $("#chart-metric").value = first.last[0].metric;
  }
  fillMetrics();
}

function draw(key, title, buckets, metric, data) {
  if (plot && plotKey === key) {
    plot.setData(data);
    return;
  }
  plot?.destroy();
  plotKey = key;
  const series = [{}];
  if (buckets) {
    series.push(
      { label: `${metric} mean`, stroke: "#1f5fbf", width: 2 },
      { label: "min", stroke: "#9dbbe6", width: 1 },
      { label: "max", stroke: "#9dbbe6", width: 1 },
    );
  } else {
    series.push({ label: metric, stroke: "#1f5fbf", width: 2, points: { show: false } });
  }
  // uPlot is the vendored global (served as /console/uPlot.iife.min.js).
  plot = new globalThis.uPlot(
    {
      title,
      width: chartWidth(),
      height: 360,
      series,
      // The min–max band between series 3 (max) and 2 (min).
      bands: buckets ? [{ series: [3, 2], fill: "rgba(31, 95, 191, 0.12)" }] : [],
      scales: { x: { time: true, range: () => xRange } },
      fmtDate: dayFirst24h,
    },
    data,
    $("#chart"),
  );
}

/** uPlot's date templates in the 24-hour, day-first style of the rest of the console. */
function dayFirst24h(template) {
  return globalThis.uPlot.fmtDate(
    template.replaceAll("{h}", "{HH}").replace(/\s?\{aa?\}/gi, "")
      .replace("{M}/{D}/{YY}", "{DD}/{MM}/{YY}").replace("{M}/{D}", "{DD}/{MM}"),
  );
}

function chartWidth() {
  return Math.max(320, $("#chart").clientWidth - 16);
}

addEventListener("resize", () => plot?.setSize({ width: chartWidth(), height: 360 }));

export async function refresh() {
  const device = $("#chart-device").value.trim();
  const metric = $("#chart-metric").value.trim();
  if (!device || !metric) {
    $("#chart-info").textContent = "Choose a device and a metric.";
    return;
  }
  const { from, to } = chosenRange();
  if (!(from < to)) {
    $("#chart-info").textContent = "Choose a start before the end.";
    return;
  }
  const range = to - from;
  const step = stepFor(range);
  const q = new URLSearchParams({ device, metric, from: String(from), to: String(to) });
  if (step) q.set("step", step);
  const mine = ++request;
  const answer = await api(`/api/v1/series?${q}`);
  if (mine !== request) return; // a later request (another series) renders instead
  const points = answer.points;
  const xs = points.map((p) => p[0] / 1000);
  const buckets = answer.step_ms > 0;
  const data = buckets
    ? [xs, points.map((p) => p[1]), points.map((p) => p[2]), points.map((p) => p[3])]
    : [xs, points.map((p) => p[1])];
  const info = `${plural(points.length, "point")} from ${answer.source}` +
    (buckets ? `, ${answer.step_ms / 1000}s buckets (mean, min–max band)` : "") +
    (answer.truncated ? " (the latest only: more matched)" : "");
  $("#chart-info").textContent = info;
  $("#chart").setAttribute("aria-label", `Chart of ${device} ${metric}: ${info}`);
  $("#chart").dataset.points = String(points.length);
  $("#chart").dataset.source = answer.source;
  xRange = [from / 1000, to / 1000];
  draw(`${device}\u0000${metric}\u0000${buckets}`, `${device} · ${metric}`, buckets, metric, data);
}

/** Whether polling redraws: "Follow" is ticked. */
export function following() {
  return $("#chart-live").checked;
}

$("#chart-device").addEventListener("change", fillMetrics);
$("#chart-form").addEventListener("submit", (e) => {
  e.preventDefault();
  attempt("Cannot read the series", refresh);
});

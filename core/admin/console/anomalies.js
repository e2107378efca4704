// Anomalies: the latest the anomaly handlers of this process found, newest
// first, filtered by least severity and device.

import { api } from "./api.js";
import { $, attempt, dateTime, el, num, row, time } from "./ui.js";

function band(a) {
  const low = a.expected_low === null ? "" : num(a.expected_low);
  const high = a.expected_high === null ? "" : num(a.expected_high);
  if (low && high) return `${low} … ${high}`;
  return low ? `≥ ${low}` : high ? `≤ ${high}` : "–";
}

function anomalyRow(a) {
  return row([
    dateTime(a.ts),
    el("td", a.severity, { class: `severity severity-${a.severity}` }),
    el("th", a.device, { scope: "row" }),
    a.metric,
    num(a.value),
    band(a),
    num(a.score),
    el("td", a.rule, { title: a.detail ?? "" }),
    el("td", a.resolved_at ? `resolved ${time(a.resolved_at)}` : "open", {
      class: a.resolved_at ? "muted" : "open",
    }),
  ], { "data-anomaly": a.id, "data-severity": a.severity });
}

export async function refresh() {
  const q = new URLSearchParams({ limit: "200", severity: $("#anomaly-severity").value });
  const device = $("#anomaly-device").value.trim();
  if (device) q.set("device", device);
  const { since, anomalies } = await api(`/api/v1/anomalies?${q}`);
  $("#anomalies tbody").replaceChildren(...anomalies.map(anomalyRow));
  const open = anomalies.filter((a) => !a.resolved_at).length;
  $("#anomaly-info").textContent = anomalies.length === 0
    ? `No anomalies since ${dateTime(since)}.`
    : `${anomalies.length} ${anomalies.length === 1 ? "anomaly" : "anomalies"}, ${open} open`;
}

$("#anomaly-form").addEventListener("submit", (e) => {
  e.preventDefault();
  attempt("Cannot read anomalies", refresh);
});

// Live tap: samples streamed from the server (Server-Sent Events), filtered
// there by pipeline, stage, device and metric.

import { sse } from "./api.js";
import { $, quantity, row, say, time } from "./ui.js";

const ROWS = 200;
let tap;
let count = 0;

export function stop() {
  tap?.abort();
  tap = undefined;
  $("#tap-start").disabled = false;
  $("#tap-stop").disabled = true;
}

function show(data) {
  const body = $("#tap tbody");
  // Dead letters come with why (a server whose tap has stages).
  const reason = data.reason ?? "";
  for (const s of data.samples) {
    count++;
    body.prepend(row([time(s.ts), s.device, s.metric, quantity(s.value, s.unit), reason]));
  }
  while (body.children.length > ROWS) body.lastChild.remove();
  $("#tap-info").textContent = `${count} samples` +
    (data.skipped ? `, ${data.skipped} skipped (rate cap)` : "");
}

$("#tap-form").addEventListener("submit", (e) => {
  e.preventDefault();
  stop();
  const q = new URLSearchParams();
  for (const k of ["pipeline", "stage", "handler", "device", "metric"]) {
    const field = $(`#tap-${k}`);
    const v = field.value.trim();
    if (v && !field.disabled) q.set(k, v);
  }
  $("#tap").classList.toggle("with-reason", q.get("stage") === "dead_letters");
  tap = new AbortController();
  count = 0;
  $("#tap tbody").replaceChildren();
  $("#tap-start").disabled = true;
  $("#tap-stop").disabled = false;
  $("#tap-info").textContent = "Connecting…";
  const signal = tap.signal;
  sse(`/api/v1/tap?${q}`, (event, data) => {
    if (event === "ready") $("#tap-info").textContent = "Listening";
    if (event === "samples") show(data);
  }, signal).catch((error) => {
    if (!signal.aborted) say(`Tap ended: ${error.message}`);
  }).finally(() => {
    if (tap?.signal === signal) stop();
  });
});
$("#tap-stop").addEventListener("click", stop);

$("#tap-stage").addEventListener("change", () => {
  $("#tap-handler").disabled = $("#tap-stage").value !== "handler";
});

/** Shows the stage filter when this server's tap takes one (its OpenAPI document says so). */
export async function enter() {
  const doc = await (await fetch("/openapi.json")).json();
  const parameters = doc.paths?.["/api/v1/tap"]?.get?.parameters ?? [];
  const staged = parameters.some((p) => p.name === "stage");
  for (const label of document.querySelectorAll("#tap-form .stage-field")) label.hidden = !staged;
}

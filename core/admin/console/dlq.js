// Dead letters: list per pipeline, inspect, replay or purge one or all.

import { api } from "./api.js";
import { $, attempt, dateTime, el, plural, row, say } from "./ui.js";

let items = [];
let request = 0;
let inspected = "";

function pipeline() {
  return $("#dlq-pipeline").value;
}

async function fillPipelines() {
  const names = (await api("/api/v1/status")).pipelines.map((p) => p.name);
  const select = $("#dlq-pipeline");
  const chosen = select.value;
  select.replaceChildren(...names.map((n) => el("option", n, { value: n })));
  if (names.includes(chosen)) select.value = chosen;
}

function button(text, label, onClick, kind = "") {
  const b = el("button", text, { type: "button", "aria-label": label, class: kind });
  b.addEventListener("click", onClick);
  return b;
}

function letterRow(d) {
  const id = d.task.id;
  const samples = d.task.payload?.samples?.length;
  const actions = el("td", "", { class: "actions" });
  actions.append(
    button("Inspect", `Inspect ${id}`, () => {
      inspected = id;
      for (const tr of document.querySelectorAll("#dlq tbody tr")) {
        tr.classList.toggle("selected", tr.dataset.task === id);
      }
      $("#dlq-detail").textContent = JSON.stringify(d, null, 2);
      $("#dlq-detail").focus();
    }, "secondary"),
    button("Replay", `Replay ${id}`, () => act(replay({ ids: [id] }))),
    button("Purge", `Purge ${id}`, () => {
      if (confirm(`Purge dead letter ${id}?`)) act(purge({ ids: id }));
    }, "danger"),
  );
  return row([
    el("th", id, { scope: "row", class: "id" }),
    d.task.type,
    samples === undefined ? "–" : String(samples),
    String(d.attempts),
    dateTime(d.dead_lettered_at),
    el("td", d.error?.message ?? "", { class: "problem" }),
    actions,
  ], { "data-task": id, class: id === inspected ? "selected" : "" });
}

export async function refresh() {
  await fillPipelines();
  const q = new URLSearchParams({ pipeline: pipeline(), limit: "100" });
  // Only the latest request renders: an older answer (another pipeline's) may arrive later.
  const mine = ++request;
  const page = await api(`/api/v1/dlq?${q}`);
  if (mine !== request) return;
  items = page.items;
  $("#dlq tbody").replaceChildren(...items.map(letterRow));
  $("#dlq-empty").hidden = items.length > 0;
  $("#dlq-more").hidden = !page.cursor;
}

function replay(selector) {
  return async () => {
    const { replayed } = await api("/api/v1/dlq/replay", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...selector, pipeline: pipeline() }),
    });
    say(`Replayed ${plural(replayed, "dead letter")}`, false);
  };
}

function purge(selector) {
  return async () => {
    const q = new URLSearchParams({ pipeline: pipeline(), ...selector });
    const { purged } = await api(`/api/v1/dlq?${q}`, { method: "DELETE" });
    say(`Purged ${plural(purged, "dead letter")}`, false);
  };
}

async function act(action) {
  try {
    await action();
  } catch (error) {
    say(error.status === 403 ? `Refused: ${error.message}` : `Failed: ${error.message}`);
  }
  await attempt("Cannot list dead letters", refresh);
}

$("#dlq-refresh").addEventListener("click", () => act(async () => {}));
$("#dlq-pipeline").addEventListener("change", () => act(async () => {}));
$("#dlq-replay-all").addEventListener("click", () => {
  if (items.length > 0) act(replay({}));
});
$("#dlq-purge-all").addEventListener("click", () => {
  if (items.length > 0 && confirm(`Purge every dead letter of pipeline ${pipeline()}?`)) {
    act(purge({ all: "true" }));
  }
});

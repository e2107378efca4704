// The TelemetryHub console: plain ES module, no build step. It only calls the
// admin API (same origin), with the bearer token the user gave, kept in this
// tab's sessionStorage.

const TOKEN_KEY = "telemetryhub.token";
const POLL_MS = 2000;
const TAP_ROWS = 200;

const $ = (selector) => document.querySelector(selector);

/** Creates an element with text content and attributes. */
function el(tag, text = "", attrs = {}) {
  const node = document.createElement(tag);
  if (text !== "") node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** Shows a status line; `problem` marks it as an error. */
function say(text, problem = true) {
  $("#message").textContent = text;
  $("#message").classList.toggle("info", !problem);
}

// ------------------------------------------------------------------ token and API

let tokenWaiters = [];

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

function headers(extra = {}) {
  const t = token();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

/** Opens the token dialog; resolves once the user gave one. */
function askToken(reason) {
  $("#token-reason").textContent = reason;
  const dialog = $("#token-dialog");
  if (!dialog.open) dialog.showModal();
  $("#token-input").focus();
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

$("#token-form").addEventListener("submit", () => {
  sessionStorage.setItem(TOKEN_KEY, $("#token-input").value.trim());
  $("#token-input").value = "";
  $("#forget-token").hidden = false;
  const waiters = tokenWaiters;
  tokenWaiters = [];
  for (const w of waiters) w();
});

$("#forget-token").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $("#forget-token").hidden = true;
  location.reload();
});

/** A problem+json answer as an Error whose message is its detail. */
async function failure(res) {
  let detail = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    detail = body.detail ?? body.title ?? detail;
  } catch {
    // Not JSON: the status line says enough.
  }
  const error = new Error(detail);
  error.status = res.status;
  return error;
}

/** Calls the API; asks for a token (and retries) on 401. */
async function api(path, init = {}) {
  for (;;) {
    const res = await fetch(path, { ...init, headers: headers(init.headers) });
    if (res.status === 401) {
      const reason = token()
        ? "The token was refused. Give a valid token."
        : "This API needs a bearer token with the read scope.";
      await askToken(reason);
      continue;
    }
    if (!res.ok) throw await failure(res);
    return await res.json();
  }
}

/** Reads Server-Sent Events with fetch (EventSource cannot send a token). */
async function sse(path, onEvent, signal) {
  for (;;) {
    const res = await fetch(path, { headers: headers(), signal });
    if (res.status === 401) {
      await askToken(token() ? "The token was refused." : "This API needs a bearer token.");
      continue;
    }
    if (!res.ok || !res.body) throw await failure(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length > 0) onEvent(event, JSON.parse(data.join("\n")));
      }
    }
  }
}

// ------------------------------------------------------------------ formatting

function num(x, digits = 2) {
  if (typeof x !== "number" || !Number.isFinite(x)) return "–";
  return Math.abs(x) >= 1000 ? Math.round(x).toLocaleString("en") : String(+x.toFixed(digits));
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString("en-GB") : "–";
}

function dateTime(ms) {
  return ms ? new Date(ms).toLocaleString("en-GB") : "–";
}

// ------------------------------------------------------------------ overview

const lastValues = new Map(); // device -> {metric, value, unit, ts}
const lastCounts = new Map(); // device -> {samples, at}
let overviewTap;

function startOverviewTap() {
  if (overviewTap) return;
  overviewTap = new AbortController();
  sse("/api/v1/tap", (event, data) => {
    if (event !== "samples") return;
    for (const s of data.samples) lastValues.set(s.device, s);
  }, overviewTap.signal).catch(() => {}).finally(() => overviewTap = undefined);
}

function stopOverviewTap() {
  overviewTap?.abort();
  overviewTap = undefined;
}

function pipelineCard(p) {
  const card = el("article", "", { class: "card", "aria-label": `Pipeline ${p.name}` });
  card.append(el("h3", `Pipeline ${p.name}`));
  const dl = el("dl");
  const rates = p.rates ?? {};
  const t = p.totals ?? {};
  const rows = [
    ["Broker", p.broker],
    ["Workers", String(p.workers)],
    ["Hub queue", p.hub_queue ? `${p.hub_queue.size} / ${p.hub_queue.capacity}` : "–"],
    ["Read", `${num(rates.samples_read, 1)} samples/s`],
    ["Processed", `${num(rates.samples_processed, 1)} samples/s`],
    ["Tasks", `${num(rates.tasks, 1)} /s`],
    ["Completed", num(t.tasks_completed, 0)],
    ["Retried", num(t.tasks_retried, 0)],
    ["Dead-lettered", num(t.tasks_dead_lettered, 0)],
    ["Dropped", num(t.samples_dropped, 0)],
    ["Refused", num(t.samples_refused, 0)],
  ];
  for (const [k, v] of rows) dl.append(el("dt", k), el("dd", v));
  card.append(dl);
  return card;
}

async function refreshOverview() {
  const [status, { devices }] = await Promise.all([
    api("/api/v1/status"),
    api("/api/v1/devices"),
  ]);
  $("#version").textContent = `${status.role} · v${status.version} · up ${status.uptime_s}s`;
  $("#pipelines").replaceChildren(...status.pipelines.map(pipelineCard));
  pipelineNames = status.pipelines.map((p) => p.name);
  const now = Date.now();
  const rows = devices.map((d) => {
    const before = lastCounts.get(d.name);
    const rate = before && now > before.at
      ? ((d.samples - before.samples) * 1000) / (now - before.at)
      : undefined;
    lastCounts.set(d.name, { samples: d.samples, at: now });
    const last = lastValues.get(d.name);
    const tr = el("tr", "", { "data-device": d.name, "data-state": d.state });
    const state = el("td", d.state, { class: `state state-${d.state}` });
    tr.append(
      el("th", d.name, { scope: "row" }),
      el("td", d.pipeline),
      state,
      el(
        "td",
        last ? `${last.metric} ${num(last.value)}${last.unit ? ` ${last.unit}` : ""}` : "–",
      ),
      el("td", rate === undefined ? "–" : `${num(rate, 1)}/s`),
      el("td", num(d.samples, 0)),
      el("td", d.last_error ? `${d.last_error} (${time(d.last_error_at)})` : ""),
    );
    return tr;
  });
  $("#devices tbody").replaceChildren(...rows);
  $("#device-names").replaceChildren(...devices.map((d) => el("option", "", { value: d.name })));
  const metrics = new Set([...lastValues.values()].map((s) => s.metric));
  $("#metric-names").replaceChildren(...[...metrics].map((m) => el("option", "", { value: m })));
}

// ------------------------------------------------------------------ charts

let plot;
let plotKey = "";
let chartRequest = 0;

async function refreshChart() {
  const first = [...lastValues.values()][0];
  if (first && !$("#chart-device").value && !$("#chart-metric").value) {
    $("#chart-device").value = first.device;
    $("#chart-metric").value = first.metric;
  }
  const device = $("#chart-device").value.trim();
  const metric = $("#chart-metric").value.trim();
  if (!device || !metric) {
    $("#chart-info").textContent = "Choose a device and a metric.";
    return;
  }
  const to = Date.now();
  const from = to - Number($("#chart-range").value);
  const step = $("#chart-step").value;
  const q = new URLSearchParams({ device, metric, from: String(from), to: String(to) });
  if (step) q.set("step", step);
  const request = ++chartRequest;
  const answer = await api(`/api/v1/series?${q}`);
  if (request !== chartRequest) return; // a later request (another series) renders instead
  const points = answer.points;
  const xs = points.map((p) => p[0] / 1000);
  const buckets = answer.step_ms > 0;
  const data = buckets
    ? [xs, points.map((p) => p[1]), points.map((p) => p[2]), points.map((p) => p[3])]
    : [xs, points.map((p) => p[1])];
  $("#chart-info").textContent = `${points.length} point${points.length === 1 ? "" : "s"} from ` +
    `${answer.source}${buckets ? `, ${answer.step_ms / 1000}s buckets` : ""}` +
    `${answer.truncated ? " (the latest only: more matched)" : ""}`;
  $("#chart").setAttribute(
    "aria-label",
    `Chart of ${device} ${metric}: ${$("#chart-info").textContent}`,
  );
  $("#chart").dataset.points = String(points.length);
  const key = `${device}\u0000${metric}\u0000${buckets}`;
  if (plot && plotKey === key) {
    plot.setData(data);
    return;
  }
  plot?.destroy();
  plotKey = key;
  const series = [
    {},
    { label: buckets ? `${metric} (mean)` : metric, stroke: "#1f5fbf", width: 2 },
  ];
  if (buckets) {
    series.push({ label: "min", stroke: "#8fb3e8", dash: [4, 4] });
    series.push({ label: "max", stroke: "#e89a8f", dash: [4, 4] });
  }
  const width = Math.max(320, $("#chart").clientWidth - 16);
  // uPlot is the vendored global (served as /console/uPlot.iife.min.js).
  plot = new globalThis.uPlot(
    { title: `${device} · ${metric}`, width, height: 340, series, scales: { x: { time: true } } },
    data,
    $("#chart"),
  );
}

$("#chart-form").addEventListener("submit", (e) => {
  e.preventDefault();
  refreshChart().catch((error) => say(`Cannot read the series: ${error.message}`));
});

// ------------------------------------------------------------------ dead letters

let pipelineNames = [];
let dlqItems = [];

function dlqPipeline() {
  return $("#dlq-pipeline").value;
}

async function fillPipelines() {
  if (pipelineNames.length === 0) {
    pipelineNames = (await api("/api/v1/status")).pipelines.map((p) => p.name);
  }
  const select = $("#dlq-pipeline");
  const chosen = select.value;
  select.replaceChildren(...pipelineNames.map((n) => el("option", n, { value: n })));
  if (pipelineNames.includes(chosen)) select.value = chosen;
}

let dlqRequest = 0;

async function refreshDlq() {
  await fillPipelines();
  const q = new URLSearchParams({ pipeline: dlqPipeline(), limit: "100" });
  // Only the latest request renders: an older answer (another pipeline's) may arrive later.
  const request = ++dlqRequest;
  const page = await api(`/api/v1/dlq?${q}`);
  if (request !== dlqRequest) return;
  dlqItems = page.items;
  const rows = page.items.map((d) => {
    const tr = el("tr", "", { "data-task": d.task.id });
    const actions = el("td");
    const inspect = el("button", "Inspect", {
      type: "button",
      class: "secondary",
      "aria-label": `Inspect ${d.task.id}`,
    });
    inspect.addEventListener("click", () => {
      $("#dlq-detail").textContent = JSON.stringify(d, null, 2);
      $("#dlq-detail").focus();
    });
    const replay = el("button", "Replay", { type: "button", "aria-label": `Replay ${d.task.id}` });
    replay.addEventListener("click", () => act(replayIds([d.task.id])));
    const purge = el("button", "Purge", {
      type: "button",
      class: "danger",
      "aria-label": `Purge ${d.task.id}`,
    });
    purge.addEventListener("click", () => {
      if (confirm(`Purge dead letter ${d.task.id}?`)) act(purgeQuery({ ids: d.task.id }));
    });
    actions.append(inspect, replay, purge);
    tr.append(
      el("th", d.task.id, { scope: "row" }),
      el("td", d.task.type),
      el("td", String(d.attempts)),
      el("td", dateTime(d.dead_lettered_at)),
      el("td", d.error?.message ?? ""),
      actions,
    );
    return tr;
  });
  $("#dlq tbody").replaceChildren(...rows);
  $("#dlq-empty").hidden = rows.length > 0;
}

function replayIds(ids) {
  return async () => {
    const body = ids ? { ids, pipeline: dlqPipeline() } : { pipeline: dlqPipeline() };
    const { replayed } = await api("/api/v1/dlq/replay", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    say(`Replayed ${replayed} dead letter${replayed === 1 ? "" : "s"}`, false);
  };
}

function purgeQuery(selector) {
  return async () => {
    const q = new URLSearchParams({ pipeline: dlqPipeline(), ...selector });
    const { purged } = await api(`/api/v1/dlq?${q}`, { method: "DELETE" });
    say(`Purged ${purged} dead letter${purged === 1 ? "" : "s"}`, false);
  };
}

async function act(action) {
  try {
    await action();
  } catch (error) {
    say(error.status === 403 ? `Refused: ${error.message}` : `Failed: ${error.message}`);
  }
  await refreshDlq().catch((error) => say(`Cannot list dead letters: ${error.message}`));
}

$("#dlq-refresh").addEventListener("click", () => act(async () => {}));
$("#dlq-pipeline").addEventListener("change", () => act(async () => {}));
$("#dlq-replay-all").addEventListener("click", () => {
  if (dlqItems.length > 0) act(replayIds(undefined));
});
$("#dlq-purge-all").addEventListener("click", () => {
  if (confirm(`Purge every dead letter of pipeline ${dlqPipeline()}?`)) {
    act(purgeQuery({ all: "true" }));
  }
});

// ------------------------------------------------------------------ live tap

let tap;
let tapCount = 0;

function stopTap() {
  tap?.abort();
  tap = undefined;
  $("#tap-start").disabled = false;
  $("#tap-stop").disabled = true;
}

$("#tap-form").addEventListener("submit", (e) => {
  e.preventDefault();
  stopTap();
  const q = new URLSearchParams();
  for (const k of ["pipeline", "device", "metric"]) {
    const v = $(`#tap-${k}`).value.trim();
    if (v) q.set(k, v);
  }
  tap = new AbortController();
  tapCount = 0;
  $("#tap tbody").replaceChildren();
  $("#tap-start").disabled = true;
  $("#tap-stop").disabled = false;
  $("#tap-info").textContent = "Connecting…";
  const signal = tap.signal;
  sse(`/api/v1/tap?${q}`, (event, data) => {
    if (event === "ready") $("#tap-info").textContent = "Listening";
    if (event !== "samples") return;
    const body = $("#tap tbody");
    for (const s of data.samples) {
      tapCount++;
      body.prepend(el("tr", "", {}));
      body.firstChild.append(
        el("td", time(s.ts)),
        el("td", s.device),
        el("td", s.metric),
        el("td", `${num(s.value)}${s.unit ? ` ${s.unit}` : ""}`),
      );
    }
    while (body.children.length > TAP_ROWS) body.lastChild.remove();
    $("#tap-info").textContent = `${tapCount} samples` +
      (data.skipped ? `, ${data.skipped} skipped (rate cap)` : "");
  }, signal).catch((error) => {
    if (!signal.aborted) say(`Tap ended: ${error.message}`);
  }).finally(() => {
    if (tap?.signal === signal) stopTap();
  });
});
$("#tap-stop").addEventListener("click", stopTap);

// ------------------------------------------------------------------ views

const VIEWS = {
  overview: { refresh: refreshOverview, poll: true },
  charts: { refresh: () => ($("#chart-live").checked ? refreshChart() : undefined), poll: true },
  dlq: { refresh: refreshDlq, poll: false },
  tap: { refresh: () => {}, poll: false },
};
let current = "";
let timer;

async function tick() {
  try {
    await VIEWS[current].refresh();
    if ($("#message").textContent.startsWith("Cannot")) say("");
  } catch (error) {
    say(`Cannot refresh: ${error.message}`);
  }
}

function show(name) {
  if (!(name in VIEWS)) name = "overview";
  current = name;
  for (const v of Object.keys(VIEWS)) $(`#view-${v}`).hidden = v !== name;
  for (const a of document.querySelectorAll("header nav a")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (name === "overview") startOverviewTap();
  else stopOverviewTap();
  if (name !== "tap") stopTap();
  clearInterval(timer);
  tick();
  if (VIEWS[name].poll) timer = setInterval(tick, POLL_MS);
}

addEventListener("hashchange", () => show(location.hash.slice(1)));
$("#forget-token").hidden = token() === "";
show(location.hash.slice(1));

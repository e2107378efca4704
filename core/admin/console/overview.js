// Overview: pipelines (status), brokers' queue depths and devices with their
// rate and last values (overview), refreshed every poll.

import { api } from "./api.js";
import { $, ago, el, num, quantity, row, time } from "./ui.js";

function pipelineCard(p) {
  const card = el("article", "", { class: "card", "aria-label": `Pipeline ${p.name}` });
  card.append(el("h3", `Pipeline ${p.name}`));
  const dl = el("dl");
  const rates = p.rates ?? {};
  const t = p.totals ?? {};
  const rows = [
    ["Broker", p.broker],
    ["Workers", String(p.workers)],
    [
      "Hub queue",
      p.hub_queue ? `${num(p.hub_queue.size, 0)} / ${num(p.hub_queue.capacity, 0)}` : "–",
    ],
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

function brokerRow(b) {
  const d = b.depth;
  const cells = d
    ? [num(d.queued, 0), num(d.inflight, 0), num(d.delayed, 0), num(d.dead, 0)]
    : ["–", "–", "–", "–"];
  const kind = [b.durable ? "durable" : "in memory", b.shared ? "shared" : ""].filter(Boolean);
  return row([
    el("th", b.name, { scope: "row" }),
    b.pipelines.join(", "),
    kind.join(", "),
    ...cells,
    el("td", b.error ?? "", { class: b.error ? "problem" : "" }),
  ], { "data-broker": b.name });
}

function lastValues(d, now) {
  const cell = el("td", "", { class: "last" });
  if (d.last.length === 0) cell.textContent = "–";
  for (const v of d.last) {
    const line = el("div", "", { title: `${time(v.ts)} (${ago(v.ts, now)})` });
    line.append(el("span", v.metric, { class: "metric" }), ` ${quantity(v.value, v.unit)}`);
    cell.append(line);
  }
  return cell;
}

function deviceRow(d, now) {
  return row([
    el("th", d.name, { scope: "row" }),
    d.pipeline,
    el("td", d.state, { class: `state state-${d.state}`, title: `since ${time(d.since)}` }),
    lastValues(d, now),
    `${num(d.rate, 1)}/s`,
    num(d.samples, 0),
    num(d.read_errors, 0),
    d.last_error ? `${d.last_error} (${time(d.last_error_at)})` : "",
  ], { "data-device": d.name, "data-state": d.state });
}

export async function refresh() {
  const [status, overview] = await Promise.all([
    api("/api/v1/status"),
    api("/api/v1/overview"),
  ]);
  const now = Date.now();
  $("#version").textContent = `${status.role} · v${status.version} · up ${status.uptime_s}s`;
  $("#pipelines").replaceChildren(...status.pipelines.map(pipelineCard));
  $("#brokers tbody").replaceChildren(...overview.brokers.map(brokerRow));
  $("#devices tbody").replaceChildren(...overview.devices.map((d) => deviceRow(d, now)));
  $("#devices-empty").hidden = overview.devices.length > 0;
}

// The TelemetryHub console: plain ES modules, no build step. Each view is a
// module with `refresh()` (and optionally `enter()`, `leave()`); this one
// switches views by the URL's hash and polls the live ones.

import * as anomalies from "./anomalies.js";
import * as charts from "./charts.js";
import * as config from "./config.js";
import * as dlq from "./dlq.js";
import * as overview from "./overview.js";
import * as tap from "./tap.js";
import { $, say } from "./ui.js";

const POLL_MS = 2000;

const VIEWS = {
  overview: { module: overview, poll: true },
  charts: { module: charts, poll: true, when: charts.following },
  anomalies: { module: anomalies, poll: true },
  dlq: { module: dlq, poll: false },
  tap: { module: { enter: tap.enter, refresh() {}, leave: tap.stop }, poll: false },
  config: { module: config, poll: false },
};

let current = "overview";
let timer;

async function tick(first = false) {
  const view = VIEWS[current];
  try {
    if (first) await view.module.enter?.();
    if (first || !view.when || view.when()) await view.module.refresh();
    if ($("#message").textContent.startsWith("Cannot")) say("");
  } catch (error) {
    say(`Cannot refresh: ${error.message}`);
  }
}

function show(name) {
  if (!(name in VIEWS)) name = "overview";
  if (name !== current) {
    VIEWS[current].module.leave?.();
    say("");
  }
  current = name;
  for (const v of Object.keys(VIEWS)) $(`#view-${v}`).hidden = v !== name;
  for (const a of document.querySelectorAll("header nav a")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  clearInterval(timer);
  tick(true);
  if (VIEWS[name].poll) timer = setInterval(tick, POLL_MS);
}

addEventListener("hashchange", () => show(location.hash.slice(1)));
show(location.hash.slice(1));

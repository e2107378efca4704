// Small DOM and formatting helpers shared by the views.

export const $ = (selector) => document.querySelector(selector);

/** Creates an element with text content and attributes. */
export function el(tag, text = "", attrs = {}) {
  const node = document.createElement(tag);
  if (text !== "") node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** A table row of cells: strings become `<td>`s, elements are kept. */
export function row(cells, attrs = {}) {
  const tr = el("tr", "", attrs);
  for (const cell of cells) tr.append(typeof cell === "string" ? el("td", cell) : cell);
  return tr;
}

/** Shows a status line; `problem` marks it as an error. */
export function say(text, problem = true) {
  $("#message").textContent = text;
  $("#message").classList.toggle("info", !problem);
}

export function num(x, digits = 2) {
  if (typeof x !== "number" || !Number.isFinite(x)) return "–";
  return Math.abs(x) >= 1000 ? Math.round(x).toLocaleString("en") : String(+x.toFixed(digits));
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString("en-GB") : "–";
}

export function dateTime(ms) {
  return ms ? new Date(ms).toLocaleString("en-GB") : "–";
}

/** "12s ago", "3m ago", "2h ago". */
export function ago(ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

/** A value with its unit. */
export function quantity(value, unit) {
  return `${num(value)}${unit ? ` ${unit}` : ""}`;
}

/** Runs `fn`, showing a failure as "`what`: reason" in the status line. */
export async function attempt(what, fn) {
  try {
    await fn();
  } catch (error) {
    say(`${what}: ${error.message}`);
  }
}

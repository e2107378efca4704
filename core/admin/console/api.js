// The admin API as the console calls it: same origin, with the bearer token
// the user gave, kept in this tab's sessionStorage.

import { $ } from "./ui.js";

const TOKEN_KEY = "telemetryhub.token";
let tokenWaiters = [];

export function token() {
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

function refusedReason() {
  return token()
    ? "The token was refused. Give a valid token."
    : "This API needs a bearer token with the read scope.";
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
$("#forget-token").hidden = token() === "";

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

/**
 * Calls the API; asks for a token (and retries) on 401. Answers with the
 * JSON body, or with the response itself for the statuses in `accept`.
 */
export async function api(path, init = {}, accept = []) {
  for (;;) {
    const res = await fetch(path, { ...init, headers: headers(init.headers) });
    if (res.status === 401) {
      await askToken(refusedReason());
      continue;
    }
    if (accept.includes(res.status)) return res;
    if (!res.ok) throw await failure(res);
    return await res.json();
  }
}

/** Reads Server-Sent Events with fetch (EventSource cannot send a token). */
export async function sse(path, onEvent, signal) {
  for (;;) {
    const res = await fetch(path, { headers: headers(), signal });
    if (res.status === 401) {
      await askToken(refusedReason());
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

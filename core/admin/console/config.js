// Configuration: the file as written and the effective configuration, both
// with secrets hidden, and validation of an edited copy (nothing is saved:
// the server only checks it).

import { api } from "./api.js";
import { $, attempt, el, plural } from "./ui.js";

let loaded = false;

export async function refresh() {
  if (loaded) return;
  const [source, effective] = await Promise.all([
    api("/api/v1/config/source", {}, [404]),
    api("/api/v1/config"),
  ]);
  $("#config-effective").textContent = JSON.stringify(effective, null, 2);
  if (source instanceof Response) {
    const problem = await source.json();
    $("#config-file").textContent = problem.detail ?? problem.title;
  } else {
    $("#config-file").textContent = source.file;
    if (!$("#config-editor").value) $("#config-editor").value = source.text;
  }
  loaded = true;
}

/** Selects line `line`, column `col` of the editor. */
function goTo(line, col) {
  const editor = $("#config-editor");
  const lines = editor.value.split("\n");
  let at = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) at += lines[i].length + 1;
  const start = at + Math.max(0, col - 1);
  editor.focus();
  editor.setSelectionRange(start, at + (lines[line - 1]?.length ?? 0));
  // Selecting does not always scroll: show the line with a little context above.
  editor.scrollTop = Math.max(0, (line - 4) * (editor.scrollHeight / lines.length));
}

function problemItem(p) {
  const item = el("li");
  if (p.line > 0) {
    const link = el("button", `${p.line}:${p.col}`, {
      type: "button",
      class: "link",
      "aria-label": `Go to line ${p.line}, column ${p.col}`,
    });
    link.addEventListener("click", () => goTo(p.line, p.col));
    item.append(link, " ");
  }
  item.append(p.path ? `${p.path}: ${p.message}` : p.message);
  return item;
}

async function validate() {
  const res = await api("/api/v1/config/validate", {
    method: "POST",
    headers: { "content-type": "application/yaml" },
    body: $("#config-editor").value,
  }, [422]);
  const answer = res instanceof Response ? await res.json() : res;
  const out = $("#config-result");
  out.dataset.valid = String(answer.valid);
  if (answer.valid) {
    out.replaceChildren(el("p", "Valid." + (answer.warnings.length ? " Warnings:" : ""), {
      class: "valid",
    }));
    const list = el("ul");
    for (const w of answer.warnings) list.append(el("li", w));
    if (answer.warnings.length) out.append(list);
    return;
  }
  const list = el("ul", "", { class: "problems" });
  list.append(...answer.problems.map(problemItem));
  out.replaceChildren(
    el("p", `${plural(answer.problems.length, "problem")}:`, {
      class: "invalid",
    }),
    list,
  );
}

$("#config-form").addEventListener("submit", (e) => {
  e.preventDefault();
  attempt("Cannot validate", validate);
});
$("#config-reload").addEventListener("click", () => {
  loaded = false;
  $("#config-editor").value = "";
  attempt("Cannot read the configuration", refresh);
});

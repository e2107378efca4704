import assert from "node:assert/strict";
import { consoleRoutes, UPLOT_VERSION } from "./_console.ts";

/** sha256 of uplot@1.6.32's dist files, as `npm pack uplot@1.6.32` gives them. */
const UPLOT_SHA256: Record<string, string> = {
  "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
  "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
};

async function sha256(bytes: ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("the console serves every file its page and modules name, with the CSP", async () => {
  const app = consoleRoutes();
  const page = await app.request("/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  const html = await page.text();
  const pending = [...html.matchAll(/(?:src|href)="\/console\/([^"]+)"/g)].map((m) => m[1]!);
  const seen = new Set<string>();
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const res = await app.request(`/console/${file}`);
    assert.equal(res.status, 200, file);
    assert.match(
      res.headers.get("content-type") ?? "",
      file.endsWith(".css") ? /css/ : /javascript/,
    );
    assert.ok(res.headers.get("content-security-policy"), file);
    const text = await res.text();
    // Modules import their siblings: those must be served too.
    for (const m of text.matchAll(/^import [^"]+ from "\.\/([^"]+)";$/gm)) pending.push(m[1]!);
  }
  for (const view of ["overview", "charts", "anomalies", "dlq", "tap", "config", "api", "ui"]) {
    assert.ok(seen.has(`${view}.js`), `${view}.js is reached from the page`);
  }
  const missing = await app.request("/console/nope.js");
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("content-type"), "application/problem+json");
  await missing.body?.cancel();
});

Deno.test("the vendored uPlot is the pinned release, unchanged", async () => {
  assert.equal(UPLOT_VERSION, "1.6.32");
  const app = consoleRoutes();
  for (const [file, expected] of Object.entries(UPLOT_SHA256)) {
    const res = await app.request(`/console/${file}`);
    assert.equal(await sha256(await res.arrayBuffer()), expected, file);
  }
});

/**
 * The web console at `/`: plain HTML, CSS and ES modules (one per view)
 * from `console/`, with uPlot 1.6.32 vendored in `console/vendor/`. The files
 * are embedded in the module graph (text imports), so serving them needs no
 * read permission and no build step, and works offline.
 *
 * The pages hold no data: they are public, and every API call they make
 * carries the token the user gives (see `console/api.js`).
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { problem } from "./_problem.ts";
import { problemResponse } from "./openapi.ts";
import html from "./console/index.html" with { type: "text" };
import script from "./console/console.js" with { type: "text" };
import apiScript from "./console/api.js" with { type: "text" };
import uiScript from "./console/ui.js" with { type: "text" };
import overviewScript from "./console/overview.js" with { type: "text" };
import chartsScript from "./console/charts.js" with { type: "text" };
import anomaliesScript from "./console/anomalies.js" with { type: "text" };
import dlqScript from "./console/dlq.js" with { type: "text" };
import tapScript from "./console/tap.js" with { type: "text" };
import configScript from "./console/config.js" with { type: "text" };
import style from "./console/console.css" with { type: "text" };
import uplotScript from "./console/vendor/uPlot.iife.min.js" with { type: "text" };
import uplotStyle from "./console/vendor/uPlot.min.css" with { type: "text" };

/** The uPlot version vendored in `console/vendor/`. */
export const UPLOT_VERSION = "1.6.32";

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** File name → [content type, body] of the files under `/console/`. */
const FILES: ReadonlyMap<string, readonly [string, string]> = new Map([
  ["console.js", [JS, script]],
  ["api.js", [JS, apiScript]],
  ["ui.js", [JS, uiScript]],
  ["overview.js", [JS, overviewScript]],
  ["charts.js", [JS, chartsScript]],
  ["anomalies.js", [JS, anomaliesScript]],
  ["dlq.js", [JS, dlqScript]],
  ["tap.js", [JS, tapScript]],
  ["config.js", [JS, configScript]],
  ["console.css", [CSS, style]],
  ["uPlot.iife.min.js", [JS, uplotScript]],
  ["uPlot.min.css", [CSS, uplotStyle]],
]);

/** Whether `path` is the console's: its page or one of its (public) files. */
export function isConsolePath(path: string): boolean {
  return path === "/" || path.startsWith("/console/");
}

/**
 * Only this origin's scripts and styles run (uPlot sets element styles from
 * script, hence `'unsafe-inline'` for styles); no framing.
 */
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'self'; script-src 'self'; " +
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // The files change with the version: revalidate rather than keep stale copies.
  "cache-control": "no-cache",
};

const page = createRoute({
  method: "get",
  path: "/",
  operationId: "getConsole",
  summary: "The web console (public page; its API calls carry the token)",
  tags: ["console"],
  responses: { 200: { description: "HTML", content: { "text/html": { schema: z.string() } } } },
});

const file = createRoute({
  method: "get",
  path: "/console/{file}",
  operationId: "getConsoleFile",
  summary: "The console's scripts and styles (public)",
  tags: ["console"],
  request: { params: z.object({ file: z.string().openapi({ example: "console.js" }) }) },
  responses: {
    200: {
      description: "JavaScript or CSS",
      content: { "text/javascript": { schema: z.string() }, "text/css": { schema: z.string() } },
    },
    404: problemResponse("No such file"),
  },
});

/** The routes, mounted at the root. */
export function consoleRoutes(): OpenAPIHono {
  const routes = new OpenAPIHono();
  const pageType = "text/html; charset=utf-8";
  routes.openapi(page, (c) => c.body(html, 200, { "content-type": pageType, ...SECURITY_HEADERS }));
  routes.openapi(file, (c) => {
    const found = FILES.get(c.req.valid("param").file);
    if (!found) return problem(c, 404, "Not found", `No console file "${c.req.param("file")}"`);
    return c.body(found[1], 200, { "content-type": found[0], ...SECURITY_HEADERS });
  });
  return routes;
}

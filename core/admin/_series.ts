/**
 * The query API (`GET /api/v1/series`), mounted under `/api/v1`: one
 * series' stored points over a time range, served by the handlers that
 * offer the optional `series()` capability (`store`, `aggregate`).
 *
 * @module
 */
import type { Context } from "@hono/hono";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { parseDuration } from "../duration.ts";
import { errorMessage } from "../errors.ts";
import type { SeriesAnswer, SeriesQuery } from "../plugin.ts";
import { problem, type ProblemResponse } from "./_problem.ts";
import { invalidRequest, json, optionalText, problemResponse } from "./openapi.ts";

/** Most points one answer holds (the latest of the range when more match). */
export const MAX_SERIES_POINTS = 10_000;

/** Range read when `from` is not given: the hour before `to`. */
const DEFAULT_RANGE_MS = 3_600_000;

/** A handler that can read series, by its component name. */
export interface SeriesSource {
  name: string;
  series(query: SeriesQuery): Promise<SeriesAnswer | undefined>;
}

/** What the route needs from the runtime. */
export interface SeriesDesk {
  /** The handlers of the process that offer `series()`. */
  sources(): SeriesSource[];
  /** Now, in ms since epoch (the runtime's clock). */
  now(): number;
}

/**
 * A time: milliseconds since epoch or an ISO 8601 date; `undefined` when
 * `text` is neither.
 */
export function parseTime(text: string): number | undefined {
  const t = text.trim();
  if (/^-?\d+$/.test(t)) return Number(t);
  if (!/^\d{4}-\d{2}-\d{2}/.test(t)) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

const SeriesSchema = z.object({
  device: z.string(),
  metric: z.string(),
  from: z.number(),
  to: z.number(),
  step_ms: z.number().int().openapi({ description: "Bucket length served; 0: the samples" }),
  source: z.enum(["samples", "aggregates"]),
  truncated: z.boolean().openapi({ description: "More points matched; the oldest left out" }),
  points: z.array(z.union([
    z.tuple([z.number(), z.number()]).readonly(),
    z.tuple([z.number(), z.number(), z.number(), z.number(), z.number()]).readonly(),
  ])).openapi({
    description: "[ts, value] for samples; [ts, mean, min, max, count] for buckets",
  }),
}).openapi("Series");

const getSeries = createRoute({
  method: "get",
  path: "/series",
  operationId: "getSeries",
  summary: "One series' stored points over a time range",
  description: "The samples, or buckets of `step` (from the aggregate handler's windows when " +
    "one divides the step, else computed from the samples). At most 10000 points: the latest " +
    "of the range.",
  tags: ["data"],
  request: {
    query: z.object({
      device: z.string().min(1).openapi({ description: "Device" }),
      metric: z.string().min(1).openapi({ description: "Metric" }),
      from: optionalText("Start: ms since epoch or ISO 8601; default an hour before `to`"),
      to: optionalText("End: ms since epoch or ISO 8601; default now"),
      step: optionalText('Bucket length ("10s", "1m", or ms); absent or 0: the samples'),
      limit: optionalText(`Most points, 1 to ${MAX_SERIES_POINTS} (default ${MAX_SERIES_POINTS})`),
    }),
  },
  responses: {
    200: json(SeriesSchema, "The points, oldest first"),
    400: problemResponse("Malformed parameters"),
    404: problemResponse("No handler of this process can read series"),
    503: problemResponse("The database does not answer"),
  },
});

/** The routes, relative to `/api/v1`. */
export function seriesRoutes(desk: SeriesDesk): OpenAPIHono {
  const routes = new OpenAPIHono({ defaultHook: invalidRequest("Invalid series query") });

  routes.openapi(getSeries, async (c) => {
    const query = parseQuery(c, desk.now());
    if (query instanceof Response) return query;
    const sources = desk.sources();
    if (sources.length === 0) {
      return problem(
        c,
        404,
        "No stored series",
        "No handler of this process can read series (add a store or aggregate handler)",
      );
    }
    const settled = await Promise.allSettled(sources.map((s) => s.series(query)));
    const answers: SeriesAnswer[] = [];
    const failures: string[] = [];
    settled.forEach((r, i) => {
      if (r.status === "fulfilled") {
        if (r.value) answers.push(r.value);
      } else failures.push(`${sources[i]!.name}: ${errorMessage(r.reason)}`);
    });
    if (answers.length === 0 && failures.length > 0) {
      return problem(c, 503, "Series unavailable", failures.join("; "), {}, {
        "retry-after": "5",
      });
    }
    // Most points wins (a handler of another pipeline knows nothing of this series);
    // aggregates on a tie, being the cheaper read.
    answers.sort((a, b) =>
      b.points.length - a.points.length ||
      Number(b.source === "aggregates") - Number(a.source === "aggregates")
    );
    const best = answers[0] ??
      { source: "samples", step_ms: query.step, points: [], truncated: false };
    return c.json({
      device: query.device,
      metric: query.metric,
      from: query.from,
      to: query.to,
      step_ms: best.step_ms,
      source: best.source,
      truncated: best.truncated,
      points: best.points,
    }, 200);
  });

  return routes;
}

function parseQuery(c: Context, now: number): SeriesQuery | ProblemResponse<400> {
  const bad = (detail: string) => problem(c, 400, "Invalid series query", detail);
  const device = c.req.query("device") ?? "";
  const metric = c.req.query("metric") ?? "";
  if (device === "" || metric === "") return bad(`"device" and "metric" are required`);
  const toText = c.req.query("to");
  const to = toText === undefined || toText === "" ? now : parseTime(toText);
  if (to === undefined) {
    return bad(`"to" must be milliseconds since epoch or an ISO 8601 date, not "${toText}"`);
  }
  const fromText = c.req.query("from");
  const from = fromText === undefined || fromText === ""
    ? to - DEFAULT_RANGE_MS
    : parseTime(fromText);
  if (from === undefined) {
    return bad(`"from" must be milliseconds since epoch or an ISO 8601 date, not "${fromText}"`);
  }
  if (from > to) return bad(`"from" must not be after "to"`);
  const stepText = c.req.query("step");
  const step = stepText === undefined || stepText === "" ? 0 : parseDuration(stepText);
  if (step === undefined || !Number.isInteger(step) || step < 0) {
    return bad(
      `"step" must be a duration such as "10s" or "1m" (or 0 for samples), not "${stepText}"`,
    );
  }
  const limitText = c.req.query("limit");
  const limit = limitText === undefined || limitText === "" ? MAX_SERIES_POINTS : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SERIES_POINTS) {
    return bad(`"limit" must be an integer from 1 to ${MAX_SERIES_POINTS}`);
  }
  return { device, metric, from, to, step, limit };
}

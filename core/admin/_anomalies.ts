/**
 * The anomaly feed (`GET /api/v1/anomalies`), mounted under `/api/v1`: the
 * latest anomalies published on this process's event bus (by the `anomaly`
 * handler), newest first, each marked once its condition resolved.
 *
 * The feed is in memory and per process: it starts empty with the process
 * and keeps the latest {@link ANOMALY_FEED_SIZE}. The `anomalies` table the
 * `anomaly` handler writes is the history.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  ANOMALY_RESOLVED_TOPIC,
  ANOMALY_TOPIC,
  type AnomalyEvent,
  type AnomalyResolvedEvent,
  type EventBus,
  SEVERITIES,
} from "../events.ts";
import { globMatcher } from "../glob.ts";
import { problem } from "./_problem.ts";
import { invalidRequest, json, optionalText, problemResponse } from "./openapi.ts";

/** Anomalies the feed keeps. */
export const ANOMALY_FEED_SIZE = 500;

/** An anomaly in the feed. */
export type FeedAnomaly = AnomalyEvent & {
  /** When its condition cleared (the resolving sample's time); absent while it holds. */
  resolved_at?: number;
};

/**
 * Keeps the latest anomalies of a bus. A redelivered task publishes the same
 * anomaly (same id) again: it is kept once.
 */
export class AnomalyFeed {
  #items: FeedAnomaly[] = [];
  #byId = new Map<string, FeedAnomaly>();
  readonly since: number;
  #size: number;

  constructor(bus: Pick<EventBus, "subscribe">, now: number, size = ANOMALY_FEED_SIZE) {
    this.since = now;
    this.#size = size;
    bus.subscribe(ANOMALY_TOPIC, (item) => this.#add(item as AnomalyEvent));
    bus.subscribe(ANOMALY_RESOLVED_TOPIC, (item) => {
      const resolved = item as AnomalyResolvedEvent;
      const anomaly = this.#byId.get(resolved.anomaly_id);
      if (anomaly) anomaly.resolved_at = resolved.ts;
    });
  }

  #add(anomaly: AnomalyEvent): void {
    if (this.#byId.has(anomaly.id)) return;
    const copy: FeedAnomaly = { ...anomaly };
    this.#items.push(copy);
    this.#byId.set(copy.id, copy);
    if (this.#items.length > this.#size) this.#byId.delete(this.#items.shift()!.id);
  }

  /** Newest first (by the sample's time), at most `limit`, passing `keep`. */
  latest(limit: number, keep: (a: FeedAnomaly) => boolean = () => true): FeedAnomaly[] {
    return this.#items.filter(keep).sort((a, b) => b.ts - a.ts).slice(0, limit);
  }
}

const AnomalySchema = z.object({
  id: z.string().openapi({ description: "Deterministic (rule, device, metric, time)" }),
  device: z.string(),
  metric: z.string(),
  ts: z.number().openapi({ description: "Time of the sample that showed it (ms since epoch)" }),
  value: z.number(),
  expected_low: z.number().nullable(),
  expected_high: z.number().nullable(),
  score: z.number(),
  rule: z.string(),
  severity: z.enum(SEVERITIES),
  detail: z.string().optional(),
  resolved_at: z.number().optional().openapi({ description: "When its condition cleared" }),
}).openapi("Anomaly");

const getAnomalies = createRoute({
  method: "get",
  path: "/anomalies",
  operationId: "listAnomalies",
  summary: "The latest anomalies of this process, newest first",
  description: `In memory: the latest ${ANOMALY_FEED_SIZE} published on the event bus since ` +
    "start, each marked with `resolved_at` once its condition cleared. The `anomaly` handler's " +
    "`anomalies` table is the history.",
  tags: ["data"],
  request: {
    query: z.object({
      limit: optionalText(`Most anomalies, 1 to ${ANOMALY_FEED_SIZE} (default 100)`),
      severity: z.enum(SEVERITIES).optional().openapi({
        description: "Least severity shown (default info)",
      }),
      device: optionalText("Device name or glob (`*`, `?`)"),
    }),
  },
  responses: {
    200: json(
      z.object({
        since: z.number().openapi({ description: "When the feed started (ms since epoch)" }),
        anomalies: z.array(AnomalySchema),
      }),
      "The anomalies",
    ),
    400: problemResponse("Malformed parameters"),
  },
});

/** The routes, relative to `/api/v1`. */
export function anomalyRoutes(feed: AnomalyFeed): OpenAPIHono {
  const routes = new OpenAPIHono({ defaultHook: invalidRequest("Invalid anomaly query") });

  routes.openapi(getAnomalies, (c) => {
    const { limit: limitText = "100", severity = "info", device } = c.req.valid("query");
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > ANOMALY_FEED_SIZE) {
      return problem(
        c,
        400,
        "Invalid limit",
        `Limit must be an integer from 1 to ${ANOMALY_FEED_SIZE}, not "${limitText}"`,
      );
    }
    const least = SEVERITIES.indexOf(severity);
    const matches = globMatcher(device || "*");
    const anomalies = feed.latest(
      limit,
      (a) => SEVERITIES.indexOf(a.severity) >= least && matches(a.device),
    );
    return c.json({ since: feed.since, anomalies }, 200);
  });

  return routes;
}

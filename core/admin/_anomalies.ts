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
import { Hono } from "@hono/hono";
import {
  ANOMALY_RESOLVED_TOPIC,
  ANOMALY_TOPIC,
  type AnomalyEvent,
  type AnomalyResolvedEvent,
  type EventBus,
  SEVERITIES,
  type Severity,
} from "../events.ts";
import { globMatcher } from "../glob.ts";
import { problem } from "./_problem.ts";

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

/** The routes, relative to `/api/v1`. */
export function anomalyRoutes(feed: AnomalyFeed): Hono {
  const routes = new Hono();

  routes.get("/anomalies", (c) => {
    const limitText = c.req.query("limit") ?? "100";
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > ANOMALY_FEED_SIZE) {
      return problem(
        c,
        400,
        "Invalid limit",
        `Limit must be an integer from 1 to ${ANOMALY_FEED_SIZE}, not "${limitText}"`,
      );
    }
    const severity = c.req.query("severity") ?? "info";
    const least = SEVERITIES.indexOf(severity as Severity);
    if (least < 0) {
      return problem(
        c,
        400,
        "Invalid severity",
        `Severity must be one of ${SEVERITIES.join(", ")}, not "${severity}"`,
      );
    }
    const device = globMatcher(c.req.query("device") || "*");
    const anomalies = feed.latest(
      limit,
      (a) => SEVERITIES.indexOf(a.severity) >= least && device(a.device),
    );
    return c.json({ since: feed.since, anomalies });
  });

  return routes;
}

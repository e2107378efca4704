/**
 * What the console's overview needs beyond `/api/v1/status`, mounted under
 * `/api/v1`: `GET /overview` gives each broker's queue depths and each
 * device's state with its rate and the last value of each of its metrics,
 * all computed on the server.
 *
 * Last values come from the tap, subscribed only while someone asks: the
 * first answer after a quiet spell has none yet, and a pipeline nobody
 * watches pays nothing.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Sample } from "../sample.ts";
import type { DeviceStatus } from "../runtime/devices.ts";
import type { BrokerReport } from "../runtime/runtime.ts";
import { DeviceSchema } from "./_status_routes.ts";
import { json } from "./openapi.ts";

/** What the route needs from the runtime. */
export interface OverviewDesk {
  brokerDepths(): Promise<BrokerReport[]>;
  devices(): DeviceStatus[];
  /** Samples per second of each device. */
  deviceRates(): Record<string, number>;
  /** Attaches a listener to the samples entering every pipeline; returns the detach function. */
  watch(listener: (samples: readonly Sample[]) => void): () => void;
  now(): number;
}

/** A metric's last value seen. */
export interface LastValue {
  metric: string;
  value: number;
  unit?: string;
  ts: number;
}

/** The tap is dropped once nobody asked for this long. */
export const OVERVIEW_IDLE_MS = 60_000;

/** Samples per second the overview's tap takes (evenly spread over what passes). */
export const OVERVIEW_TAP_RATE = 1000;

/** Most device+metric pairs remembered; further ones are not shown (bounded memory). */
export const MAX_LAST_VALUES = 10_000;

/** The last value of each device's metrics, bounded by {@link MAX_LAST_VALUES}. */
export class LastValues {
  #devices = new Map<string, Map<string, LastValue>>();
  #size = 0;

  record(samples: readonly Sample[]): void {
    for (const s of samples) {
      let metrics = this.#devices.get(s.device);
      const known = metrics?.has(s.metric) === true;
      if (!known && this.#size >= MAX_LAST_VALUES) continue;
      if (!metrics) this.#devices.set(s.device, metrics = new Map());
      if (!known) this.#size++;
      const last: LastValue = { metric: s.metric, value: s.value, ts: s.ts };
      if (s.unit !== undefined) last.unit = s.unit;
      metrics.set(s.metric, last);
    }
  }

  /** A device's metrics, by name. */
  of(device: string): LastValue[] {
    const metrics = this.#devices.get(device);
    if (!metrics) return [];
    return [...metrics.values()].sort((a, b) => a.metric.localeCompare(b.metric));
  }
}

const count = () => z.number().int().nonnegative();

const BrokerSchema = z.object({
  name: z.string(),
  pipelines: z.array(z.string()).openapi({ description: "Pipelines whose tasks it holds" }),
  shared: z.boolean(),
  durable: z.boolean(),
  depth: z.object({ queued: count(), inflight: count(), delayed: count(), dead: count() })
    .nullable().openapi({ description: "null when the broker did not answer within 2 s" }),
  error: z.string().optional().openapi({ description: "Why `depth` is null" }),
}).openapi("BrokerReport");

const LastValueSchema = z.object({
  metric: z.string(),
  value: z.number(),
  unit: z.string().optional(),
  ts: z.number(),
}).openapi("LastValue");

const OverviewSchema = z.object({
  brokers: z.array(BrokerSchema),
  devices: z.array(z.object({
    ...DeviceSchema.shape,
    rate: z.number().openapi({ description: "Samples per second over the last 10 s" }),
    last: z.array(LastValueSchema).openapi({
      description: "The last value of each metric, from the tap while the overview is asked for",
    }),
  })),
}).openapi("Overview");

const getOverview = createRoute({
  method: "get",
  path: "/overview",
  operationId: "getOverview",
  summary: "Broker queue depths, and devices with their rate and last values",
  description: "What the console's overview shows beyond status. Last values come from the tap, " +
    "attached while someone asks (dropped after a minute without a request): the first answer " +
    "after a quiet spell has none.",
  tags: ["status"],
  responses: { 200: json(OverviewSchema, "Brokers and devices") },
});

/** The routes, relative to `/api/v1`. */
export function overviewRoutes(desk: OverviewDesk): OpenAPIHono {
  const routes = new OpenAPIHono();
  const values = new LastValues();
  let askedAt = 0;
  let detach: (() => void) | undefined;

  function watch(): void {
    askedAt = desk.now();
    detach ??= desk.watch(function recordLastValues(samples) {
      if (desk.now() - askedAt > OVERVIEW_IDLE_MS) {
        detach?.();
        detach = undefined;
        return;
      }
      values.record(samples);
    });
  }

  routes.openapi(getOverview, async (c) => {
    watch();
    const rates = desk.deviceRates();
    const devices = desk.devices().map((d) => ({
      ...d,
      rate: rates[d.name] ?? 0,
      last: values.of(d.name),
    }));
    return c.json({ brokers: await desk.brokerDepths(), devices }, 200);
  });

  return routes;
}

/**
 * Probes, metrics, status and devices (`/healthz`, `/readyz`, `/metrics`,
 * `/api/v1/status`, `/api/v1/devices`), mounted at the root.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { DEVICE_STATES } from "../runtime/devices.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { problem } from "./_problem.ts";
import { invalidRequest, json, problemResponse } from "./openapi.ts";

const CheckSchema = z.object({
  name: z.string().openapi({ example: "broker:mem" }),
  ready: z.boolean(),
  reason: z.string().optional(),
}).openapi("ReadinessCheck");

const ReadinessSchema = z.object({
  ready: z.boolean(),
  not_ready: z.array(CheckSchema),
  checks: z.array(CheckSchema),
}).openapi("Readiness");

const count = () => z.number().int().nonnegative();

const TotalsSchema = z.object({
  samples_read: count(),
  samples_dropped: count(),
  samples_processed: count(),
  samples_refused: count().openapi({ description: "Refused at the edge: invalid content" }),
  samples_quarantined: count().openapi({ description: "Dead-lettered alone by a handler" }),
  tasks_enqueued: count(),
  tasks_completed: count(),
  tasks_retried: count(),
  tasks_dead_lettered: count(),
  tasks_released: count(),
}).openapi("PipelineTotals", { description: "Counts since start-up" });

const RatesSchema = z.object({
  samples_read: z.number(),
  samples_processed: z.number(),
  tasks: z.number(),
}).openapi("PipelineRates", { description: "Per second, over the last 10 s" });

const StatusSchema = z.object({
  role: z.enum(["all", "hub", "processor"]),
  version: z.string(),
  state: z.enum(["created", "running", "stopping", "stopped"]),
  uptime_s: z.number().int(),
  pipelines: z.array(z.object({
    name: z.string(),
    broker: z.string(),
    devices: z.array(z.string()),
    handlers: z.array(z.string()),
    hub_queue: z.object({ size: count(), capacity: count() }).nullable()
      .openapi({ description: "null in a processor" }),
    workers: count(),
    totals: TotalsSchema,
    rates: RatesSchema.optional(),
  })),
}).openapi("Status");

export const DeviceSchema = z.object({
  name: z.string(),
  type: z.string(),
  pipeline: z.string(),
  state: z.enum(DEVICE_STATES),
  samples: count(),
  read_errors: count(),
  restarts: count(),
  last_sample_at: z.number().optional(),
  last_error: z.string().optional(),
  last_error_at: z.number().optional(),
  since: z.number().openapi({ description: "When it entered its state (ms since epoch)" }),
}).openapi("Device");

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  operationId: "getHealth",
  summary: "Liveness: 200 while the process serves",
  tags: ["probes"],
  responses: { 200: json(z.object({ status: z.literal("ok") }), "Serving") },
});

const readyz = createRoute({
  method: "get",
  path: "/readyz",
  operationId: "getReadiness",
  summary: "Readiness: brokers and stores answer, pipelines run",
  description: "Otherwise 503 with `not_ready: [{name, reason}]`.",
  tags: ["probes"],
  responses: {
    200: json(ReadinessSchema, "Ready"),
    503: json(ReadinessSchema, "Not ready, with what is not"),
  },
});

const metrics = createRoute({
  method: "get",
  path: "/metrics",
  operationId: "getMetrics",
  summary: "Prometheus metrics (text exposition format)",
  description: "Open unless `admin.metrics_auth: true`; see docs/metrics.md.",
  tags: ["probes"],
  responses: {
    200: {
      description: "Text exposition format 0.0.4",
      content: { "text/plain": { schema: z.string() } },
    },
  },
});

const status = createRoute({
  method: "get",
  path: "/api/v1/status",
  operationId: "getStatus",
  summary: "Role, version, uptime, pipelines, totals and rates",
  tags: ["status"],
  responses: { 200: json(StatusSchema, "Status") },
});

const devices = createRoute({
  method: "get",
  path: "/api/v1/devices",
  operationId: "listDevices",
  summary: "Every device's state, last sample and error, counts",
  description: "States: `starting`, `up`, `down`, `stopped`.",
  tags: ["status"],
  responses: { 200: json(z.object({ devices: z.array(DeviceSchema) }), "Devices") },
});

const device = createRoute({
  method: "get",
  path: "/api/v1/devices/{id}",
  operationId: "getDevice",
  summary: "One device's state",
  tags: ["status"],
  request: { params: z.object({ id: z.string().openapi({ description: "Device name" }) }) },
  responses: {
    200: json(DeviceSchema, "The device"),
    404: problemResponse("No such device in this process"),
  },
});

/** The routes, mounted at the root. */
export function statusRoutes(runtime: Runtime, version: string): OpenAPIHono {
  const routes = new OpenAPIHono({ defaultHook: invalidRequest("Invalid request") });

  routes.openapi(healthz, (c) => c.json({ status: "ok" as const }, 200));

  routes.openapi(readyz, async (c) => {
    const checks = await runtime.readiness();
    const notReady = checks.filter((x) => !x.ready);
    const body = { ready: notReady.length === 0, not_ready: notReady, checks };
    return notReady.length === 0 ? c.json(body, 200) : c.json(body, 503);
  });

  routes.openapi(metrics, async (c) => {
    const text = await runtime.metrics.metrics();
    return c.text(text, 200, { "content-type": runtime.metrics.registry.contentType });
  });

  routes.openapi(status, (c) => {
    const rates = runtime.rates();
    return c.json({
      role: runtime.role,
      version,
      state: runtime.state,
      uptime_s: Math.round((runtime.clock.now() - runtime.startedAt) / 1000),
      pipelines: [...runtime.pipelines.values()].map((p) => ({
        name: p.name,
        broker: p.brokerName,
        devices: p.devices.map((d) => d.status.name),
        handlers: p.handlers,
        hub_queue: p.queue ? { size: p.queue.size, capacity: p.queue.capacity } : null,
        workers: p.pool ? runtime.config.pipelines[p.name]!.workers : 0,
        totals: runtime.metrics.totals(p.name),
        ...(rates[p.name] ? { rates: rates[p.name]! } : {}),
      })),
    }, 200);
  });

  routes.openapi(devices, (c) => c.json({ devices: runtime.devices() }, 200));

  routes.openapi(device, (c) => {
    const { id } = c.req.valid("param");
    const found = runtime.devices().find((d) => d.name === id);
    if (!found) return problem(c, 404, "Unknown device", `No device "${id}" in this process`);
    return c.json(found, 200);
  });

  return routes;
}

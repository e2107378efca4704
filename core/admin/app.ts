/**
 * The admin, ingest and metrics API: one Hono app per process, built by
 * {@link createAdminApp} and tested with `app.request()`. Only the entry
 * point listens (see `serve.ts`).
 *
 * @module
 */
import type { Context } from "@hono/hono";
import { HTTPException } from "@hono/hono/http-exception";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { loadConfigText } from "../config/mod.ts";
import type { Role } from "../config/schema.ts";
import { redactText, redactValue } from "../redact.ts";
import { errorMessage } from "../errors.ts";
import type { PluginRegistry } from "../registry.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { authenticate, guardBrowsers, type RouteAccess } from "./_guard.ts";
import { problem } from "./_problem.ts";
import { configRoutes, type ReloadOutcome } from "./_config_routes.ts";
import { deadLetterRoutes } from "./_dead_letters.ts";
import { consoleRoutes, isConsolePath } from "./_console.ts";
import { seriesRoutes, type SeriesSource } from "./_series.ts";
import { OVERVIEW_TAP_RATE, overviewRoutes } from "./_overview.ts";
import { AnomalyFeed, anomalyRoutes } from "./_anomalies.ts";
import { configSourceRoutes } from "./_config_source.ts";
import { statusRoutes } from "./_status_routes.ts";
import { tapRoutes } from "./_tap_routes.ts";
import { ingestRoutes } from "./_ingest_routes.ts";
import {
  describeGuards,
  documentInfo,
  invalidRequest,
  json,
  type OpenAPIDocument,
  SampleSchema,
} from "./openapi.ts";

/** Options of {@link createAdminApp}. */
export interface AdminOptions {
  /** Plugins known to the process, for `POST /api/v1/config/validate`. */
  registry: PluginRegistry;
  /** The effective configuration with secrets redacted (changes on reload). */
  redactedConfig: () => unknown;
  /** Version shown by status. */
  version: string;
  /** Environment used when validating posted YAML (default: the process's). */
  env?: Record<string, string | undefined>;
  /**
   * Secrets known to the process (the configuration's, and those of reloads):
   * hidden, with URL credentials and secret-looking keys, in every response.
   */
  secrets?: ReadonlySet<string>;
  /** The role override the process runs with (`--role`), so validate checks what run would. */
  role?: Role;
  /** Directory relative `plugins:` entries resolve against, for validate. */
  baseDir?: string;
  /**
   * Re-reads and applies the configuration file (`POST /api/v1/reload`);
   * absent, the route answers 404.
   */
  reload?: () => Promise<ReloadOutcome>;
}

export type { ReloadOutcome };

const PUBLIC_PATHS = new Set(["/healthz", "/readyz", "/openapi.json"]);

/**
 * The scope each route needs (see docs/admin-api.md, "Security"); unknown
 * routes count as read. The guard asks it for every request, and the OpenAPI
 * document for every operation.
 */
export function routeAccess(method: string, path: string): RouteAccess {
  // The console's files hold no data; the API calls they make carry the token.
  if (PUBLIC_PATHS.has(path) || (method === "GET" && isConsolePath(path))) return "public";
  if (path === "/metrics") return "metrics";
  if (path === "/api/v1/samples" && method === "POST") return "ingest";
  if (method === "POST" && (path === "/api/v1/reload" || path === "/api/v1/dlq/replay")) {
    return "admin";
  }
  if (method === "DELETE" && path === "/api/v1/dlq") return "admin";
  return "read";
}

const openApiRoute = createRoute({
  method: "get",
  path: "/openapi.json",
  operationId: "getOpenApi",
  summary: "This document",
  tags: ["probes"],
  responses: {
    200: json(z.record(z.string(), z.unknown()), "The OpenAPI 3.1 document"),
  },
});

/** Responses shown as they are: no configuration or error can be in them. */
function unredacted(c: Context): boolean {
  return c.req.path === "/openapi.json" || c.req.path === "/metrics" ||
    (c.req.path === "/api/v1/samples" && c.res.status === 202);
}

/**
 * Builds the app.
 *
 * @example
 * ```ts ignore
 * const app = createAdminApp(runtime, { registry, redactedConfig, version: "0.1.0" });
 * const res = await app.request("/healthz");
 * ```
 */
export function createAdminApp(runtime: Runtime, options: AdminOptions): OpenAPIHono {
  const { registry, redactedConfig, version, secrets = new Set<string>() } = options;
  // Admin settings apply from start-up; a reload does not rebind or re-key the API.
  const admin = runtime.config.admin;
  const app = new OpenAPIHono({ defaultHook: invalidRequest("Invalid request") });

  app.onError((error, c) => {
    if (error instanceof HTTPException && error.status < 500) {
      return problem(c, error.status as 400, error.message || "Bad request");
    }
    runtime.logger.error("Admin API request failed", {
      method: c.req.method,
      path: c.req.path,
      error: errorMessage(error),
    });
    // Never leak internals (stack traces, messages that may hold secrets).
    return problem(c, 500, "Internal server error", "The request could not be completed");
  });
  app.notFound((c) => problem(c, 404, "Not found", `No route for ${c.req.method} ${c.req.path}`));

  // Count every request by route pattern and status (label children cached:
  // this runs on every ingest request).
  app.use("*", async function countRequests(c, next) {
    await next();
    const route = c.req.routePath === "/*" || c.req.routePath === "*"
      ? "unmatched"
      : c.req.routePath;
    runtime.metrics.fastCounter(runtime.metrics.httpRequests, route, String(c.res.status)).inc();
  });

  // One redaction on every response that can carry configuration or errors (outside
  // the checks below, so their answers pass through it too).
  app.use("*", async function redactResponse(c, next) {
    await next();
    if (unredacted(c) || !/json/.test(c.res.headers.get("content-type") ?? "")) return;
    const text = await c.res.clone().text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return;
    }
    const { status } = c.res;
    const headers = new Headers(c.res.headers);
    headers.delete("content-length");
    // Unset first: Hono merges the old response's headers into a replacement.
    c.res = undefined;
    c.res = new Response(JSON.stringify(redactValue(body, secrets)), { status, headers });
  });

  // Browsers first: a page the operator visits must not reach the API (no token by default).
  app.use("*", guardBrowsers(admin));

  // Bearer tokens by scope: everything but the probes and the API description.
  app.use("*", authenticate(admin, (c) => routeAccess(c.req.method, c.req.path)));

  app.openAPIRegistry.register("Sample", SampleSchema);

  app.route("/", statusRoutes(runtime, version));

  let doc: OpenAPIDocument | undefined;
  app.openapi(openApiRoute, (c) => {
    // Built once, on first ask: every route is registered by then.
    doc ??= describeGuards(app.getOpenAPI31Document(documentInfo(version)), routeAccess);
    return c.json(doc as unknown as Record<string, unknown>, 200);
  });

  app.route("/", ingestRoutes(runtime, admin));

  app.route(
    "/api/v1",
    deadLetterRoutes({
      brokers: () => runtime.brokers.values(),
      brokerOf: (pipeline) => runtime.pipelines.get(pipeline)?.broker,
    }, { maxBody: admin.max_body }),
  );

  app.route(
    "/api/v1",
    seriesRoutes({
      // Looked up per request: a reload may replace handlers.
      sources: () =>
        [...runtime.handlers].flatMap(([name, h]): SeriesSource[] =>
          h.series ? [{ name, series: h.series.bind(h) }] : []
        ),
      now: () => runtime.clock.now(),
    }),
  );

  app.route("/", consoleRoutes());

  app.route(
    "/api/v1",
    overviewRoutes({
      brokerDepths: () => runtime.brokerDepths(),
      devices: () => runtime.devices(),
      deviceRates: () => runtime.deviceRates(),
      watch: (listener) => runtime.tap.subscribe({}, OVERVIEW_TAP_RATE, listener),
      now: () => runtime.clock.now(),
    }),
  );

  app.route(
    "/api/v1",
    configSourceRoutes({
      file: () => runtime.config.file,
      read: (path) => Deno.readTextFile(path),
      redact: (text) => redactText(text, secrets),
    }),
  );

  app.route("/api/v1", anomalyRoutes(new AnomalyFeed(runtime.events, runtime.clock.now())));

  app.route(
    "/api/v1",
    configRoutes({
      redactedConfig,
      // Never imports what it was sent: plugin modules must be loaded already.
      validate: (text) =>
        loadConfigText(text, {
          file: "<input>",
          registry,
          env: options.env ?? Deno.env.toObject(),
          loadPlugins: false,
          ...(options.role ? { role: options.role } : {}),
          ...(options.baseDir ? { baseDir: options.baseDir } : {}),
        }),
      ...(options.reload ? { reload: options.reload } : {}),
    }, { maxBody: admin.max_body }),
  );

  app.route("/", tapRoutes(runtime, { rate: admin.tap_rate, secrets }));

  return app;
}

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
import type { Sample } from "../sample.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { authenticate, guardBrowsers, mediaType, type RouteAccess } from "./_guard.ts";
import { type InvalidItem, type ParsedBody, parseJsonBody, parseNdjsonBody } from "./_ingest.ts";
import { parseLineProtocolBody, type Precision, PRECISIONS } from "./_line_protocol.ts";
import { problem, type ProblemResponse } from "./_problem.ts";
import { bodyLimit, readCapped, tooLarge } from "./_body.ts";
import { configRoutes, type ReloadOutcome } from "./_config_routes.ts";
import { deadLetterRoutes } from "./_dead_letters.ts";
import { consoleRoutes, isConsolePath } from "./_console.ts";
import { seriesRoutes, type SeriesSource } from "./_series.ts";
import { OVERVIEW_TAP_RATE, overviewRoutes } from "./_overview.ts";
import { AnomalyFeed, anomalyRoutes } from "./_anomalies.ts";
import { configSourceRoutes } from "./_config_source.ts";
import { statusRoutes } from "./_status_routes.ts";
import { tapRoutes } from "./_tap_routes.ts";
import {
  describeGuards,
  documentInfo,
  invalidRequest,
  json,
  type OpenAPIDocument,
  problemResponse,
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

const ingestRoute = createRoute({
  method: "post",
  path: "/api/v1/samples",
  operationId: "ingestSamples",
  summary: "Ingest samples: JSON, NDJSON or InfluxDB line protocol, plain, gzip or deflate",
  description: "One sample or an array (`application/json`), one per line " +
    "(`application/x-ndjson`), or InfluxDB line protocol (`text/plain`, `?precision=`); " +
    "`Content-Encoding` gzip, deflate or identity (admin.max_body bounds the decompressed size " +
    "too). Routed to the pipeline owning each device, or `?pipeline=`. 202 once the samples are " +
    "safe: held by the broker when it is durable, queued in the hub when it is not. A body with " +
    "any invalid item is refused whole (400, every item by index and reason); 503 with " +
    "Retry-After when a blocking hub queue is full.",
  tags: ["data"],
  request: {
    query: z.object({
      pipeline: z.string().optional().openapi({
        description: "Pipeline to use instead of the device's owner",
      }),
      precision: z.string().optional().openapi({
        description: "Timestamp unit of line protocol (text/plain); default ns",
        enum: Object.keys(PRECISIONS),
      }),
    }),
    body: {
      required: true,
      // Described here, checked by the edge (admitSample), which every way in shares.
      content: {
        "application/json": {
          schema: {
            oneOf: [{ $ref: "#/components/schemas/Sample" }, {
              type: "array",
              items: { $ref: "#/components/schemas/Sample" },
            }],
          },
        },
        "application/x-ndjson": {
          schema: { type: "string", description: "One Sample object per line" },
        },
        "text/plain": {
          schema: {
            type: "string",
            description: "InfluxDB line protocol: one sample per numeric field",
          },
        },
      },
    },
  },
  responses: {
    202: json(
      z.object({
        accepted: z.number().int(),
        skipped_fields: z.number().int().optional().openapi({
          description: "String fields of line protocol, which are not samples",
        }),
      }),
      "Accepted",
    ),
    400: problemResponse("Malformed body, invalid samples (each listed) or precision"),
    404: problemResponse("Unknown pipeline"),
    413: problemResponse("Body over admin.max_body (compressed or decompressed)"),
    415: problemResponse("Unsupported media type or content encoding"),
    503: problemResponse("Hub queue full or broker unavailable; retry after Retry-After"),
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

  const limit = bodyLimit(admin.max_body);
  app.openAPIRegistry.register("Sample", SampleSchema);

  app.route("/", statusRoutes(runtime, version));

  let doc: OpenAPIDocument | undefined;
  app.openapi(openApiRoute, (c) => {
    // Built once, on first ask: every route is registered by then.
    doc ??= describeGuards(app.getOpenAPI31Document(documentInfo(version)), routeAccess);
    return c.json(doc as unknown as Record<string, unknown>, 200);
  });

  // The hot path: its query is checked by the handler, not by a zod validator, which cost
  // about 5 µs of the 35 µs of CPU a single-sample request takes (measured); the document
  // still describes it from the same route definition.
  app.openAPIRegistry.registerPath(ingestRoute);
  const { query: _checkedByHandler, ...ingestRequest } = ingestRoute.request;
  app.openapi({
    ...ingestRoute,
    request: ingestRequest,
    hide: true,
    middleware: [limit] as const,
  }, async (c) => {
    const type = mediaType(c);
    const text = await ingestText(c, admin.max_body);
    if (typeof text !== "string") return text;
    const edge = { now: runtime.clock.now(), stamper: runtime.stamper };
    let parsed: ParsedBody & { skipped?: number };
    if (type === "application/json" || type === "") parsed = parseJsonBody(text, edge);
    else if (type === "application/x-ndjson" || type === "application/ndjson") {
      parsed = parseNdjsonBody(text, edge);
    } else if (type === "text/plain") {
      const precision = c.req.query("precision") ?? "ns";
      if (!(precision in PRECISIONS)) {
        return problem(
          c,
          400,
          "Invalid precision",
          `Precision must be one of ${Object.keys(PRECISIONS).join(", ")}, not "${precision}"`,
        );
      }
      parsed = parseLineProtocolBody(text, edge, admin.line_protocol, precision as Precision);
    } else {
      return problem(
        c,
        415,
        "Unsupported media type",
        "Send application/json, application/x-ndjson or text/plain (InfluxDB line protocol), " +
          `not "${type}"`,
      );
    }
    if (!parsed.ok && "malformed" in parsed) {
      return problem(c, 400, "Malformed body", parsed.malformed);
    }
    const named = c.req.query("pipeline");
    if (!parsed.ok) {
      runtime.metrics.samplesRefused.labels(named ?? "unknown", "http").inc(parsed.invalid.length);
      return invalidSamples(c, parsed.invalid);
    }

    if (named !== undefined && !runtime.pipelines.get(named)?.queue) {
      return problem(c, 404, "Unknown pipeline", `Pipeline "${named}" runs no hub in this process`);
    }
    const groups = new Map<string, Sample[]>();
    const invalid: InvalidItem[] = [];
    parsed.samples.forEach((s, index) => {
      const pipeline = named ?? runtime.pipelineOf(s.device)?.name;
      if (!pipeline) {
        invalid.push({
          index,
          reason: `Device "${s.device}" belongs to no pipeline; name one with ?pipeline=`,
        });
        return;
      }
      let g = groups.get(pipeline);
      if (!g) groups.set(pipeline, g = []);
      g.push(s);
    });
    if (invalid.length > 0) return invalidSamples(c, invalid);
    // All or nothing: refuse before taking any when a queue would block.
    for (const [pipeline, samples] of groups) {
      if (runtime.pipelines.get(pipeline)!.queue!.wouldBlock(samples.length)) {
        return problem(
          c,
          503,
          "Hub queue full",
          `Pipeline "${pipeline}" cannot take more samples now; retry shortly`,
          {},
          { "retry-after": "1" },
        );
      }
    }
    const held: Promise<void>[] = [];
    for (const [pipeline, samples] of groups) {
      const ingested = runtime.ingest(pipeline, samples);
      if (ingested !== "full") held.push(ingested);
    }
    // 202 means the broker holds them (a durable broker), or that they are queued.
    try {
      await Promise.all(held);
    } catch (error) {
      return problem(c, 503, "Not stored", errorMessage(error), {}, { "retry-after": "1" });
    }
    const skipped = parsed.skipped ? { skipped_fields: parsed.skipped } : {};
    return c.json({ accepted: parsed.samples.length, ...skipped }, 202);
  });

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

/** `Content-Encoding`s an ingest body may have (what Telegraf, Vector and Fluent Bit send). */
const ENCODINGS: Readonly<Record<string, CompressionFormat>> = {
  gzip: "gzip",
  "x-gzip": "gzip",
  deflate: "deflate",
};

/**
 * The text of an ingest body, decompressed when it is gzip or deflate
 * encoded; `max` bytes bound the decompressed size too, so a small
 * compressed body cannot expand without limit. A problem response when the
 * body cannot be read.
 */
async function ingestText(
  c: Context,
  max: number,
): Promise<string | ProblemResponse<400 | 413 | 415>> {
  const encoding = (c.req.header("content-encoding") ?? "").trim().toLowerCase();
  if (encoding === "" || encoding === "identity") return await c.req.text();
  const format = ENCODINGS[encoding];
  if (!format) {
    return problem(
      c,
      415,
      "Unsupported content encoding",
      `Send the body as gzip, deflate or identity, not "${encoding}"`,
    );
  }
  const body = c.req.raw.body;
  if (!body) return "";
  let whole;
  try {
    whole = await readCapped(body.pipeThrough(new DecompressionStream(format)), max);
  } catch (error) {
    return problem(
      c,
      400,
      "Malformed body",
      `Body is not valid ${encoding}: ${errorMessage(error)}`,
    );
  }
  if (!whole) return tooLarge(c, max, "Decompressed bodies are");
  return new TextDecoder().decode(whole);
}

function invalidSamples(c: Context, invalid: InvalidItem[]) {
  return problem(
    c,
    400,
    "Invalid samples",
    `${invalid.length} item${invalid.length === 1 ? "" : "s"} rejected; nothing was accepted`,
    { invalid },
  );
}

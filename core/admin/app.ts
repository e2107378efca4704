/**
 * The admin, ingest and metrics API: one Hono app per process, built by
 * {@link createAdminApp} and tested with `app.request()`. Only the entry
 * point listens (see `serve.ts`).
 *
 * @module
 */
import { type Context, Hono } from "@hono/hono";
import { streamSSE } from "@hono/hono/streaming";
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
import { problem } from "./_problem.ts";
import { bodyLimit, readCapped, tooLarge } from "./_body.ts";
import { configRoutes, type ReloadOutcome } from "./_config_routes.ts";
import { deadLetterRoutes } from "./_dead_letters.ts";
import { consoleRoutes, isConsolePath } from "./_console.ts";
import { seriesRoutes, type SeriesSource } from "./_series.ts";
import { OVERVIEW_TAP_RATE, overviewRoutes } from "./_overview.ts";
import { AnomalyFeed, anomalyRoutes } from "./_anomalies.ts";
import { configSourceRoutes } from "./_config_source.ts";
import { openApiDocument } from "./openapi.ts";

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

/** The scope each route needs (see README, "Admin API"); unknown routes count as read. */
function accessOf(c: Context): RouteAccess {
  const { path, method } = c.req;
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
export function createAdminApp(runtime: Runtime, options: AdminOptions): Hono {
  const { registry, redactedConfig, version, secrets = new Set<string>() } = options;
  // Admin settings apply from start-up; a reload does not rebind or re-key the API.
  const admin = runtime.config.admin;
  const app = new Hono();

  app.onError((error, c) => {
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
  app.use("*", authenticate(admin, accessOf));

  const limit = bodyLimit(admin.max_body);

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const checks = await runtime.readiness();
    const notReady = checks.filter((x) => !x.ready);
    return c.json(
      { ready: notReady.length === 0, not_ready: notReady, checks },
      notReady.length === 0 ? 200 : 503,
    );
  });

  app.get("/metrics", async (c) => {
    const text = await runtime.metrics.metrics();
    return c.body(text, 200, { "content-type": runtime.metrics.registry.contentType });
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument(version)));

  app.post("/api/v1/samples", limit, async (c) => {
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

  app.get("/api/v1/status", (c) => {
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
        rates: rates[p.name],
      })),
    });
  });

  app.get("/api/v1/devices", (c) => c.json({ devices: runtime.devices() }));
  app.get("/api/v1/devices/:id", (c) => {
    const device = runtime.devices().find((d) => d.name === c.req.param("id"));
    if (!device) {
      return problem(c, 404, "Unknown device", `No device "${c.req.param("id")}" in this process`);
    }
    return c.json(device);
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

  app.get("/api/v1/tap", (c) => {
    const filter = {
      ...(c.req.query("pipeline") ? { pipeline: c.req.query("pipeline")! } : {}),
      ...(c.req.query("device") ? { device: c.req.query("device")! } : {}),
      ...(c.req.query("metric") ? { metric: c.req.query("metric")! } : {}),
    };
    return streamSSE(c, async (stream) => {
      let queue = Promise.resolve();
      const off = runtime.tap.subscribe(filter, admin.tap_rate, (samples, skipped) => {
        queue = queue.then(() =>
          stream.writeSSE({
            event: "samples",
            data: redactText(JSON.stringify({ samples, skipped }), secrets),
          })
        ).catch(() => off());
      });
      stream.onAbort(off);
      try {
        await stream.writeSSE({
          event: "ready",
          data: redactText(JSON.stringify({ filter }), secrets),
        });
        while (!stream.aborted && !stream.closed && runtime.state !== "stopped") {
          await stream.sleep(15_000);
          // A comment line keeps proxies from closing an idle stream.
          if (!stream.aborted) await stream.write(": keep-alive\n\n");
        }
      } finally {
        off();
      }
    });
  });

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
async function ingestText(c: Context, max: number): Promise<string | Response> {
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

function invalidSamples(c: Context, invalid: InvalidItem[]): Response {
  return problem(
    c,
    400,
    "Invalid samples",
    `${invalid.length} item${invalid.length === 1 ? "" : "s"} rejected; nothing was accepted`,
    { invalid },
  );
}

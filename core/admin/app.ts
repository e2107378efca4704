/**
 * The admin, ingest and metrics API: one Hono app per process, built by
 * {@link createAdminApp} and tested with `app.request()`. Only the entry
 * point listens (see `serve.ts`).
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "@hono/hono";
import { streamSSE } from "@hono/hono/streaming";
import { loadConfigText } from "../config/mod.ts";
import type { Role } from "../config/schema.ts";
import { redactText, redactValue } from "../redact.ts";
import { ConfigError, errorMessage, formatProblem } from "../errors.ts";
import type { BrokerInstance, DeadLetterSelector } from "../plugin.ts";
import type { PluginRegistry } from "../registry.ts";
import type { Sample } from "../sample.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { accepts, authenticate, guardBrowsers, mediaType, type RouteAccess } from "./_guard.ts";
import { type InvalidItem, type ParsedBody, parseJsonBody, parseNdjsonBody } from "./_ingest.ts";
import { parseLineProtocolBody, type Precision, PRECISIONS } from "./_line_protocol.ts";
import { problem } from "./_problem.ts";
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

/** What a reload did. */
export type ReloadOutcome =
  | { ok: true; restarted: string[]; unchanged: string[] }
  | { ok: false; problems: string[] };

const PUBLIC_PATHS = new Set(["/healthz", "/readyz", "/openapi.json"]);

/** The scope each route needs (see README, "Admin API"); unknown routes count as read. */
function accessOf(c: Context): RouteAccess {
  const { path, method } = c.req;
  if (PUBLIC_PATHS.has(path)) return "public";
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

/** Media types of a posted configuration. */
const YAML_TYPES = [
  "application/yaml",
  "application/x-yaml",
  "text/yaml",
  "text/x-yaml",
  "application/json",
  "",
];

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

  // Browsers first: a page the operator visits must not reach the API (no token by default).
  app.use("*", guardBrowsers(admin));

  // Bearer tokens by scope: everything but the probes and the API description.
  app.use("*", authenticate(admin, accessOf));

  // One redaction on every response that can carry configuration or errors.
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
    for (const [pipeline, samples] of groups) runtime.ingest(pipeline, samples);
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

  app.get("/api/v1/tasks/:id", async (c) => {
    const id = c.req.param("id");
    for (const broker of runtime.brokers.values()) {
      const record = await broker.getTask(id);
      if (record) return c.json(record);
    }
    return problem(c, 404, "Unknown task", `No task "${id}" is retained`);
  });

  app.get("/api/v1/dlq", async (c) => {
    const picked = pickBroker(c, runtime);
    if (picked instanceof Response) return picked;
    const limitText = c.req.query("limit") ?? "100";
    const limitValue = Number(limitText);
    if (!Number.isInteger(limitValue) || limitValue < 1 || limitValue > 1000) {
      return problem(c, 400, "Invalid limit", `"limit" must be an integer from 1 to 1000`);
    }
    const selector = selectorFrom(c.req.query("ids"), c.req.query("type"), c.req.query("pipeline"));
    const cursor = c.req.query("cursor");
    let page;
    try {
      page = await picked.listDeadLetters({
        ...selector,
        limit: limitValue,
        ...(cursor ? { cursor } : {}),
      });
    } catch (error) {
      // Cursors are opaque and each broker checks its own; a refused one is the client's error.
      if (cursor && /cursor/i.test(errorMessage(error))) {
        return problem(c, 400, "Invalid cursor", "Give a cursor from a previous page, or none");
      }
      throw error;
    }
    return c.json(page);
  });

  app.post("/api/v1/dlq/replay", accepts(["application/json"]), limit, async (c) => {
    const body = await jsonBody(c);
    if (body instanceof Response) return body;
    const picked = pickBroker(c, runtime, stringField(body, "pipeline"));
    if (picked instanceof Response) return picked;
    const selector = bodySelector(c, body);
    if (selector instanceof Response) return selector;
    return c.json({ replayed: await picked.replayDeadLetters(selector) });
  });

  app.delete("/api/v1/dlq", async (c) => {
    const picked = pickBroker(c, runtime);
    if (picked instanceof Response) return picked;
    const all = c.req.query("all") === "true";
    const selector = selectorFrom(c.req.query("ids"), c.req.query("type"), c.req.query("pipeline"));
    if (!all && Object.keys(selector).length === 0) {
      return problem(c, 400, "No selector", "Give ids=, type=, pipeline= or all=true");
    }
    return c.json({ purged: await picked.purgeDeadLetters(selector) });
  });

  app.get("/api/v1/config", (c) => c.json(redactedConfig()));

  app.post("/api/v1/config/validate", accepts(YAML_TYPES), limit, async (c) => {
    const text = await c.req.text();
    try {
      // Never imports what it was sent: plugin modules must be loaded already.
      const loaded = await loadConfigText(text, {
        file: "<input>",
        registry,
        env: options.env ?? Deno.env.toObject(),
        loadPlugins: false,
        ...(options.role ? { role: options.role } : {}),
        ...(options.baseDir ? { baseDir: options.baseDir } : {}),
      });
      return c.json({ valid: true, problems: [], warnings: loaded.warnings.map(formatProblem) });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return c.json(
        {
          valid: false,
          problems: error.problems.map((p) => ({ ...p, text: formatProblem(p) })),
        },
        422,
      );
    }
  });

  app.post("/api/v1/reload", accepts(["", "application/json"]), async (c) => {
    if (!options.reload) return problem(c, 404, "Reload unavailable", "This process cannot reload");
    const outcome = await options.reload();
    if (!outcome.ok) {
      return c.json({ reloaded: false, problems: outcome.problems }, 422);
    }
    return c.json({ reloaded: true, restarted: outcome.restarted, unchanged: outcome.unchanged });
  });

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

/** Reads `stream` whole; `null` once it passes `max` bytes (the rest is not read). */
async function readCapped(
  stream: ReadableStream<Uint8Array>,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > max) return null;
    chunks.push(chunk);
  }
  const only = chunks.length === 1 ? chunks[0]! : undefined;
  if (only?.buffer instanceof ArrayBuffer) return only as Uint8Array<ArrayBuffer>;
  const whole = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    whole.set(chunk, offset);
    offset += chunk.length;
  }
  return whole;
}

const tooLarge = (c: Context, max: number, what = "Bodies are") =>
  problem(c, 413, "Payload too large", `${what} limited to ${max} bytes`);

/**
 * Refuses bodies over `max` bytes with 413: at once when Content-Length says
 * so, and while reading when the body is chunked (never buffered whole).
 * Hono's own middleware re-wraps every body stream, which cost more than
 * the rest of an ingest request.
 */
function bodyLimit(max: number): MiddlewareHandler {
  return async function limitBody(c, next) {
    const declared = c.req.header("content-length");
    if (declared !== undefined) {
      if (Number(declared) > max) return tooLarge(c, max);
      return await next();
    }
    const body = c.req.raw.body;
    if (!body) return await next();
    const whole = await readCapped(body, max);
    if (!whole) return tooLarge(c, max);
    c.req.raw = new Request(c.req.raw, { body: whole });
    return await next();
  };
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

function selectorFrom(
  ids: string | undefined,
  type: string | undefined,
  pipeline: string | undefined,
): DeadLetterSelector {
  const selector: DeadLetterSelector = {};
  if (ids) selector.ids = ids.split(",").map((s) => s.trim()).filter(Boolean);
  if (type) selector.type = type;
  if (pipeline) selector.pipeline = pipeline;
  return selector;
}

function pickBroker(c: Context, runtime: Runtime, pipeline?: string): BrokerInstance | Response {
  const name = pipeline ?? c.req.query("pipeline");
  if (name !== undefined && name !== "") {
    const p = runtime.pipelines.get(name);
    if (!p) return problem(c, 404, "Unknown pipeline", `No pipeline "${name}"`);
    return p.broker;
  }
  if (runtime.brokers.size === 1) return [...runtime.brokers.values()][0]!;
  return problem(
    c,
    400,
    "Pipeline required",
    "This process has several brokers; name one with ?pipeline=",
  );
}

async function jsonBody(c: Context): Promise<Record<string, unknown> | Response> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return problem(c, 400, "Malformed body", "Body must be a JSON object");
    }
    return value as Record<string, unknown>;
  } catch (error) {
    return problem(c, 400, "Malformed body", `Body is not valid JSON: ${(error as Error).message}`);
  }
}

function stringField(body: Record<string, unknown>, key: string): string | undefined {
  return typeof body[key] === "string" ? body[key] as string : undefined;
}

function bodySelector(c: Context, body: Record<string, unknown>): DeadLetterSelector | Response {
  const selector: DeadLetterSelector = {};
  if (body.ids !== undefined) {
    if (!Array.isArray(body.ids) || !body.ids.every((x) => typeof x === "string")) {
      return problem(c, 400, "Invalid selector", '"ids" must be an array of strings');
    }
    selector.ids = body.ids as string[];
  }
  for (const key of ["type", "pipeline"] as const) {
    if (body[key] !== undefined) {
      if (typeof body[key] !== "string") {
        return problem(c, 400, "Invalid selector", `"${key}" must be a string`);
      }
      selector[key] = body[key] as string;
    }
  }
  if (Object.keys(selector).length === 0 && body.all !== true) {
    return problem(c, 400, "No selector", 'Give "ids", "type", "pipeline" or "all": true');
  }
  return selector;
}

/**
 * The ingest route (`POST /api/v1/samples`): JSON, NDJSON and InfluxDB line
 * protocol, plain or compressed, through the edge every way in shares.
 *
 * @module
 */
import type { Context } from "@hono/hono";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { CoreConfig } from "../config/schema.ts";
import { errorMessage } from "../errors.ts";
import type { Sample } from "../sample.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { mediaType } from "./_guard.ts";
import { type InvalidItem, type ParsedBody, parseJsonBody, parseNdjsonBody } from "./_ingest.ts";
import { parseLineProtocolBody, type Precision, PRECISIONS } from "./_line_protocol.ts";
import { problem, type ProblemResponse } from "./_problem.ts";
import { bodyLimit, readCapped, tooLarge } from "./_body.ts";
import { invalidRequest, json, problemResponse } from "./openapi.ts";

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

/** The route, mounted at `/`. */
export function ingestRoutes(
  runtime: Runtime,
  admin: Pick<CoreConfig["admin"], "max_body" | "line_protocol">,
): OpenAPIHono {
  const routes = new OpenAPIHono({ defaultHook: invalidRequest("Invalid request") });
  const limit = bodyLimit(admin.max_body);
  // The hot path: its query is checked by the handler, not by a zod validator, which cost
  // about 5 µs of the 35 µs of CPU a single-sample request takes (measured); the document
  // still describes it from the same route definition.
  routes.openAPIRegistry.registerPath(ingestRoute);
  const { query: _checkedByHandler, ...ingestRequest } = ingestRoute.request;
  routes.openapi({
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
  return routes;
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

/**
 * The OpenAPI 3.1 description of the admin API (`GET /openapi.json`).
 *
 * @module
 */

const problem = {
  description: "Problem details (RFC 9457)",
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
};
const json = (description: string, schema: Record<string, unknown> = { type: "object" }) => ({
  description,
  content: { "application/json": { schema } },
});
const query = (
  name: string,
  description: string,
  schema: Record<string, unknown> = { type: "string" },
) => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});
const secured = [{ bearer: [] }];

/** The document; `version` is the TelemetryHub version. */
export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "TelemetryHub admin API",
      version,
      description: "Health, Prometheus metrics, the REST sample gateway, and the task and " +
        "dead-letter workbench. Once tokens are configured every route but /healthz, /readyz, " +
        "/openapi.json (and /metrics unless admin.metrics_auth) needs `Authorization: Bearer " +
        "<token>` with the route's scope (`x-scope`): 401 without a known token, 403 without " +
        "the scope. Every route answers 403 to a Host not allowed, and POST or DELETE to a " +
        "foreign Origin.",
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        Problem: {
          type: "object",
          required: ["title", "status"],
          properties: {
            type: { type: "string" },
            title: { type: "string" },
            status: { type: "integer" },
            detail: { type: "string" },
            invalid: {
              type: "array",
              items: {
                type: "object",
                properties: { index: { type: "integer" }, reason: { type: "string" } },
              },
            },
          },
        },
        Sample: {
          type: "object",
          required: ["device", "metric", "value"],
          properties: {
            device: { type: "string", minLength: 1 },
            metric: { type: "string", minLength: 1 },
            value: { type: "number" },
            ts: { type: "number", description: "Milliseconds since the epoch; default now" },
            unit: { type: "string" },
            seq: { type: "integer" },
            tags: { type: "object", additionalProperties: { type: "string" } },
          },
        },
        Series: {
          type: "object",
          required: ["device", "metric", "step_ms", "source", "truncated", "points"],
          properties: {
            device: { type: "string" },
            metric: { type: "string" },
            from: { type: "number" },
            to: { type: "number" },
            step_ms: { type: "integer", description: "Bucket length served; 0: samples" },
            source: { type: "string", enum: ["samples", "aggregates"] },
            truncated: { type: "boolean", description: "More points matched; the oldest left out" },
            points: {
              type: "array",
              description: "[ts, value] for samples; [ts, mean, min, max, count] for buckets",
              items: { type: "array", items: { type: "number" }, minItems: 2, maxItems: 5 },
            },
          },
        },
        Selector: {
          type: "object",
          properties: {
            ids: { type: "array", items: { type: "string" } },
            type: { type: "string" },
            pipeline: { type: "string" },
            all: { type: "boolean" },
          },
        },
      },
    },
    paths: {
      "/healthz": { get: { summary: "Liveness", responses: { 200: json("Serving") } } },
      "/readyz": {
        get: {
          summary: "Readiness: brokers and stores reachable, pipelines running",
          responses: { 200: json("Ready"), 503: json("Not ready, with what is not") },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics",
          responses: {
            200: { description: "Text exposition format", content: { "text/plain": {} } },
          },
        },
      },
      "/api/v1/samples": {
        post: {
          summary: "Ingest samples (one, an array, NDJSON or InfluxDB line protocol; gzip or " +
            "deflate encoded or plain)",
          security: secured,
          parameters: [
            query("pipeline", "Pipeline to use instead of the device's owner"),
            query("precision", "Timestamp unit of line protocol (text/plain); default ns", {
              type: "string",
              enum: ["ns", "us", "ms", "s"],
            }),
            {
              name: "Content-Encoding",
              in: "header",
              required: false,
              description: "gzip, deflate or identity; admin.max_body bounds the decompressed size",
              schema: { type: "string", enum: ["gzip", "x-gzip", "deflate", "identity"] },
            },
          ],
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: {
                  oneOf: [{ $ref: "#/components/schemas/Sample" }, {
                    type: "array",
                    items: { $ref: "#/components/schemas/Sample" },
                  }],
                },
              },
              "application/x-ndjson": { schema: { type: "string" } },
              "text/plain": {
                schema: {
                  type: "string",
                  description: "InfluxDB line protocol: one sample per numeric field",
                },
              },
            },
          },
          responses: {
            202: json("Accepted", {
              type: "object",
              properties: {
                accepted: { type: "integer" },
                skipped_fields: {
                  type: "integer",
                  description: "String fields of line protocol, which are not samples",
                },
              },
            }),
            400: problem,
            401: problem,
            413: problem,
            415: problem,
            503: problem,
          },
        },
      },
      "/api/v1/status": {
        get: {
          summary: "Role, version, uptime, pipelines and rates",
          security: secured,
          responses: { 200: json("Status") },
        },
      },
      "/api/v1/devices": {
        get: { summary: "Device states", security: secured, responses: { 200: json("Devices") } },
      },
      "/api/v1/devices/{id}": {
        get: {
          summary: "One device's state",
          security: secured,
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: { 200: json("Device"), 404: problem },
        },
      },
      "/api/v1/tasks/{id}": {
        get: {
          summary: "A task's state record",
          security: secured,
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: { 200: json("Task record"), 404: problem },
        },
      },
      "/api/v1/dlq": {
        get: {
          summary: "Dead letters, oldest first, paginated",
          security: secured,
          parameters: [
            query("pipeline", "Pipeline (required when several brokers run)"),
            query("type", "Task type"),
            query("ids", "Comma-separated task ids"),
            query("limit", "Page size, 1 to 1000", { type: "integer", default: 100 }),
            query("cursor", "Cursor from the previous page"),
          ],
          "x-scope": "read",
          responses: { 200: json("A page"), 400: problem },
        },
        delete: {
          summary: "Purge dead letters",
          security: secured,
          "x-scope": "admin",
          parameters: [
            query("pipeline", "Pipeline"),
            query("type", "Task type"),
            query("ids", "Comma-separated task ids"),
            query("all", "Purge everything", { type: "boolean" }),
          ],
          responses: { 200: json("How many were purged"), 400: problem },
        },
      },
      "/api/v1/dlq/replay": {
        post: {
          summary: "Put dead letters back in the queue",
          security: secured,
          requestBody: {
            content: { "application/json": { schema: { $ref: "#/components/schemas/Selector" } } },
          },
          "x-scope": "admin",
          responses: { 200: json("How many were replayed"), 400: problem, 415: problem },
        },
      },
      "/api/v1/config": {
        get: {
          summary: "Effective configuration, secrets redacted",
          security: secured,
          responses: { 200: json("Configuration") },
        },
      },
      "/api/v1/config/validate": {
        post: {
          summary: "Validate a posted telemetry.yaml",
          security: secured,
          "x-scope": "read",
          requestBody: { content: { "application/yaml": { schema: { type: "string" } } } },
          responses: { 200: json("Valid"), 415: problem, 422: json("Positioned problems") },
        },
      },
      "/api/v1/reload": {
        post: {
          summary: "Re-read telemetry.yaml and restart what changed",
          security: secured,
          "x-scope": "admin",
          responses: {
            200: json("Applied"),
            415: problem,
            422: json("Refused: positioned problems"),
          },
        },
      },
      "/api/v1/tap": {
        get: {
          summary: "Live samples as Server-Sent Events, filtered and rate-capped",
          security: secured,
          parameters: [
            query("pipeline", "Pipeline"),
            query("device", "Device"),
            query("metric", "Metric"),
          ],
          responses: {
            200: { description: "event: samples", content: { "text/event-stream": {} } },
          },
        },
      },
      "/api/v1/series": {
        get: {
          summary: "One series' stored points over a time range: the samples, or buckets of " +
            "`step` (from the aggregate handler's windows when one divides the step, else " +
            "computed from the samples). At most 10000 points: the latest of the range",
          security: secured,
          "x-scope": "read",
          parameters: [
            { ...query("device", "Device"), required: true },
            { ...query("metric", "Metric"), required: true },
            query("from", "Start: ms since epoch or ISO 8601; default an hour before `to`"),
            query("to", "End: ms since epoch or ISO 8601; default now"),
            query("step", 'Bucket length ("10s", "1m", or ms); absent or 0: the samples'),
            query("limit", "Most points, 1 to 10000", { type: "integer", default: 10000 }),
          ],
          responses: {
            200: json("The points, oldest first", { $ref: "#/components/schemas/Series" }),
            400: problem,
            401: problem,
            404: problem,
            503: problem,
          },
        },
      },
      "/api/v1/overview": {
        get: {
          summary: "What the console's overview shows beyond status: each broker's queue " +
            "depths (queued, inflight, delayed, dead; `depth: null` with `error` when it does " +
            "not answer) and each device's state with `rate` (samples/s) and `last` (the last " +
            "value of each metric, from the tap while the overview is asked for)",
          security: secured,
          "x-scope": "read",
          responses: { 200: json("Brokers and devices"), 401: problem },
        },
      },
      "/api/v1/config/source": {
        get: {
          summary: "The configuration file as written (comments and `${…}` kept), every " +
            "secret shown as `***`: `{file, text}`",
          security: secured,
          "x-scope": "read",
          responses: { 200: json("The file"), 401: problem, 404: problem },
        },
      },
      "/api/v1/anomalies": {
        get: {
          summary: "The latest anomalies of this process (in memory, newest first), each with " +
            "`resolved_at` once its condition cleared",
          security: secured,
          "x-scope": "read",
          parameters: [
            query("limit", "Most anomalies, 1 to 500", { type: "integer", default: 100 }),
            query("severity", "Least severity shown", {
              enum: ["info", "warning", "critical"],
              default: "info",
            }),
            query("device", "Device name or glob (`*`, `?`)"),
          ],
          responses: { 200: json("`{since, anomalies}`"), 400: problem, 401: problem },
        },
      },
      "/": {
        get: {
          summary: "The web console (public page; its API calls carry the token)",
          responses: { 200: { description: "HTML", content: { "text/html": {} } } },
        },
      },
      "/console/{file}": {
        get: {
          summary: "The console's scripts and styles (public)",
          parameters: [{ name: "file", in: "path", required: true, schema: { type: "string" } }],
          responses: {
            200: {
              description: "JavaScript or CSS",
              content: { "text/javascript": {}, "text/css": {} },
            },
            404: problem,
          },
        },
      },
      "/openapi.json": { get: { summary: "This document", responses: { 200: json("OpenAPI") } } },
    },
  };
}

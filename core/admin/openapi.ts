/**
 * The OpenAPI 3.1 description of the admin API (`GET /openapi.json`),
 * generated from the routes themselves: each route is declared with
 * `createRoute()` (`@hono/zod-openapi`) and its zod schemas validate the
 * request's parameters, so the document cannot drift from what is served.
 * What every route shares (the Host and Origin checks, bearer scopes) is
 * added once by {@link describeGuards}, from the same function the guard
 * middleware asks.
 *
 * @module
 */
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "@hono/hono";
import { problem, type ProblemResponse, ProblemSchema } from "./_problem.ts";
import type { RouteAccess } from "./_guard.ts";

/** A sample as posted to `/api/v1/samples` (the edge checks it: `admitSample()`). */
export const SampleSchema = z.object({
  device: z.string().min(1),
  metric: z.string().min(1),
  value: z.number(),
  ts: z.number().optional().openapi({ description: "Milliseconds since the epoch; default now" }),
  unit: z.string().optional(),
  seq: z.number().int().optional().openapi({ description: "Sequence per device and metric" }),
  tags: z.record(z.string(), z.string()).optional(),
}).openapi("Sample");

/** A JSON answer of `schema`. */
export function json<S extends z.ZodType>(schema: S, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** A problem answer. */
export function problemResponse(description: string) {
  return { description, content: { "application/problem+json": { schema: ProblemSchema } } };
}

/** An optional text parameter (query parameters arrive as text), described for the document. */
export const optionalText = (description: string) => z.string().optional().openapi({ description });

/**
 * The hook of a sub-app's validators: a request whose parameters do not
 * match the route's schemas gets a 400 problem titled `title`, naming each
 * parameter and what is wrong with it.
 */
export function invalidRequest(title: string) {
  return function refuse(
    result: { success: true } | { success: false; error: z.ZodError },
    c: Context,
  ): ProblemResponse<400> | undefined {
    if (result.success) return;
    const detail = result.error.issues
      .map((i) => `"${i.path.join(".")}": ${i.message}`)
      .join("; ");
    return problem(c, 400, title, detail);
  };
}

/** An OpenAPI 3.1 document as the generator makes it. */
export type OpenAPIDocument = ReturnType<OpenAPIHono["getOpenAPI31Document"]>;

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"] as const;

/** `/devices/{id}` → `/devices/:id`: the path the guard sees, with the parameter as written. */
const honoPath = (path: string) => path.replace(/\{(\w+)\}/g, ":$1");

/**
 * Adds what the middleware in front of every route does: the bearer scope
 * each operation needs (`x-scope`, from `accessOf`, the function the guard
 * asks), `security`, and the 401 and 403 answers.
 */
export function describeGuards(
  doc: OpenAPIDocument,
  accessOf: (method: string, path: string) => RouteAccess,
): OpenAPIDocument {
  const refused = problemRef("Refused");
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const access = accessOf(method.toUpperCase(), honoPath(path));
      const responses = op.responses ??= {};
      responses["403"] ??= {
        ...refused,
        description: access === "public"
          ? "Host not allowed (admin.allowed_hosts), or a foreign Origin on POST or DELETE"
          : "Host or Origin not allowed, or the token lacks the scope",
      };
      if (access === "public") {
        op.security = [];
        continue;
      }
      op["x-scope"] = access;
      // Metrics are open unless admin.metrics_auth: the token is optional there.
      op.security = access === "metrics" ? [{}, { bearer: [] }] : [{ bearer: [] }];
      responses["401"] ??= { ...refused, description: "No known bearer token (once tokens exist)" };
    }
  }
  doc.components ??= {};
  doc.components.securitySchemes = { bearer: { type: "http", scheme: "bearer" } };
  return doc;
}

function problemRef(description: string) {
  return {
    description,
    content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
  };
}

/** What `GET /openapi.json` says about the API as a whole. */
export function documentInfo(version: string) {
  return {
    openapi: "3.1.0",
    info: {
      title: "TelemetryHub admin API",
      version,
      license: { name: "MIT", identifier: "MIT" },
      description: "Health, Prometheus metrics, the REST sample gateway, the query API, the " +
        "live tap, configuration and the dead-letter workbench. Once tokens are configured every " +
        "route but /healthz, /readyz, /openapi.json and the console's files (and /metrics unless " +
        "admin.metrics_auth) needs `Authorization: Bearer <token>` with the route's scope " +
        "(`x-scope`): 401 without a known token, 403 without the scope. Every route answers 403 " +
        "to a Host not allowed, and POST or DELETE to a foreign Origin. Errors are RFC 9457 " +
        "`application/problem+json`.",
    },
    servers: [{ url: "http://127.0.0.1:8080", description: "The default admin.listen" }],
  };
}

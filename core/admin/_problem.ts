/**
 * RFC 9457 problem details: every error response of the admin API.
 *
 * @module
 */
import type { Context, TypedResponse } from "@hono/hono";
import type { ContentfulStatusCode } from "@hono/hono/utils/http-status";
import type { JSONParsed } from "@hono/hono/utils/types";
import { z } from "@hono/zod-openapi";

/** A problem body, as the OpenAPI document describes it (`Problem`). */
export const ProblemSchema = z.object({
  type: z.string().optional().openapi({ description: 'Always "about:blank"' }),
  title: z.string().openapi({ description: "Short, the same for every problem of its kind" }),
  status: z.number().int(),
  detail: z.string().optional().openapi({ description: "What went wrong this time" }),
  invalid: z.array(z.object({ index: z.number().int(), reason: z.string() })).optional()
    .openapi({ description: "Ingest: every refused item, by its index in the body" }),
}).openapi("Problem", { description: "Problem details (RFC 9457); extensions may follow" });

/** A problem body. */
export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  [extension: string]: unknown;
}

/** A problem answer, typed as the routes' declared `application/problem+json` responses. */
export type ProblemResponse<S extends ContentfulStatusCode, X = unknown> =
  & Response
  & TypedResponse<JSONParsed<z.infer<typeof ProblemSchema> & X>, S, "json">;

/** Responds with `application/problem+json`. */
export function problem<S extends ContentfulStatusCode, X extends object = object>(
  c: Context,
  status: S,
  title: string,
  detail?: string,
  extensions: X = {} as X,
  headers: Record<string, string> = {},
): ProblemResponse<S, X> {
  const body: Problem = { type: "about:blank", title, status, ...extensions };
  if (detail !== undefined) body.detail = detail;
  // The type only tells the route which declared answer this is; the body is what it says.
  return c.body(JSON.stringify(body), status, {
    "content-type": "application/problem+json",
    ...headers,
  }) as unknown as ProblemResponse<S, X>;
}

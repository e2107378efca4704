/**
 * RFC 9457 problem details: every error response of the admin API.
 *
 * @module
 */
import type { Context } from "@hono/hono";
import type { ContentfulStatusCode } from "@hono/hono/utils/http-status";

/** A problem body. */
export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  [extension: string]: unknown;
}

/** Responds with `application/problem+json`. */
export function problem(
  c: Context,
  status: ContentfulStatusCode,
  title: string,
  detail?: string,
  extensions: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Response {
  const body: Problem = { type: "about:blank", title, status, ...extensions };
  if (detail !== undefined) body.detail = detail;
  return c.body(JSON.stringify(body), status, {
    "content-type": "application/problem+json",
    ...headers,
  });
}

/**
 * What a request must show before a route runs: an accepted Host (DNS
 * rebinding), no foreign Origin on an unsafe method (CSRF), a bearer token
 * with the route's scope, and the route's documented content type.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "@hono/hono";
import { type AdminConfig, allowedHosts, normalHost, scopedTokens } from "../config/admin.ts";
import type { TokenScope } from "../config/schema.ts";
import { bearerScopes } from "./_auth.ts";
import { problem } from "./_problem.ts";

/** What a route needs: no token, or a token with this scope. */
export type RouteAccess = "public" | TokenScope;

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Refuses requests whose Host is not allowed (403) and unsafe requests
 * carrying an `Origin` that is neither allowed nor the request's own (403).
 * Clients that are not browsers (curl, Telegraf, Prometheus) send no Origin.
 */
export function guardBrowsers(
  admin: Pick<AdminConfig, "listen" | "allowed_hosts" | "allowed_origins">,
): MiddlewareHandler {
  const hosts = allowedHosts(admin);
  const origins = new Set(admin.allowed_origins.map((o) => o.replace(/\/$/, "").toLowerCase()));
  return async function guard(c, next) {
    const host = c.req.header("host") ?? new URL(c.req.url).host;
    if (hosts && !hosts.has(normalHost(host))) {
      return problem(
        c,
        403,
        "Host not allowed",
        `Host ${JSON.stringify(normalHost(host).slice(0, 100))} is not accepted; add it to ` +
          "admin.allowed_hosts",
      );
    }
    const origin = c.req.header("origin");
    if (origin !== undefined && !SAFE_METHODS.has(c.req.method)) {
      const o = origin.trim().toLowerCase();
      let sameOrigin = false;
      try {
        sameOrigin = o !== "null" && new URL(o).host === host.trim().toLowerCase();
      } catch {
        sameOrigin = false;
      }
      if (!sameOrigin && !origins.has(o)) {
        return problem(
          c,
          403,
          "Origin not allowed",
          `Origin ${JSON.stringify(o.slice(0, 100))} may not change state; add it to ` +
            "admin.allowed_origins",
        );
      }
    }
    await next();
  };
}

/**
 * Checks bearer tokens per route. With no token configured every route is
 * open (loopback only: see `exposureProblem`). The ingest route needs a
 * token once any token exists; the others once a token other than ingest
 * tokens exists (so `admin.ingest_tokens` alone guards ingest only, as
 * before scopes).
 */
export function authenticate(
  admin: Pick<AdminConfig, "token" | "ingest_tokens" | "tokens" | "metrics_auth">,
  accessOf: (c: Context) => RouteAccess,
): MiddlewareHandler {
  const tokens = scopedTokens(admin);
  const anyToken = tokens.length > 0;
  const guarded = tokens.some((t) => [...t.scopes].some((s) => s !== "ingest"));
  return async function checkToken(c, next) {
    const access = accessOf(c);
    if (access === "public" || !anyToken) return await next();
    if (access === "metrics" && !admin.metrics_auth) return await next();
    if (access !== "ingest" && access !== "metrics" && !guarded) return await next();
    const scopes = bearerScopes(c.req.header("authorization"), tokens);
    if (scopes === undefined) {
      return problem(c, 401, "Unauthorized", "A valid bearer token is required", {}, {
        "www-authenticate": 'Bearer realm="telemetryhub"',
      });
    }
    if (!scopes.has(access)) {
      return problem(
        c,
        403,
        "Forbidden",
        `This token lacks the "${access}" scope this route needs`,
      );
    }
    await next();
  };
}

/**
 * The media type of a request (lower case, no parameters); `""` when there
 * is none.
 */
export function mediaType(c: Context): string {
  return (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
}

/**
 * Refuses (415) a request whose Content-Type is not one of `types`; `""` in
 * `types` admits a request without one. Browsers can send `text/plain`,
 * forms and multipart across origins without asking first: routes that
 * change state never accept them unless documented.
 */
export function accepts(types: readonly string[]): MiddlewareHandler {
  return async function checkType(c, next) {
    const type = mediaType(c);
    if (!types.includes(type)) {
      const named = types.filter((t) => t !== "").join(", ");
      return problem(
        c,
        415,
        "Unsupported media type",
        `Send ${named}${types.includes("") ? " or no body" : ""}, not "${type || "none"}"`,
      );
    }
    await next();
  };
}

/**
 * What the `admin:` settings mean for access: which tokens grant which
 * scopes, which Host names are accepted, and whether the API may listen
 * where it is told to. Shared by the config checks and the admin app.
 *
 * @module
 */
import type { CoreConfig, TokenScope } from "./schema.ts";

/** The `admin:` block after core validation. */
export type AdminConfig = CoreConfig["admin"];

/** A bearer token and what it may do (implied scopes included). */
export interface ScopedToken {
  token: string;
  scopes: ReadonlySet<TokenScope>;
}

const IMPLIED: Record<TokenScope, readonly TokenScope[]> = {
  admin: ["admin", "read", "metrics"],
  read: ["read", "metrics"],
  ingest: ["ingest"],
  metrics: ["metrics"],
};

/**
 * Every configured token with its scopes: `admin.token` has them all,
 * `admin.ingest_tokens` only ingest, `admin.tokens` what they list (admin
 * implies read, read implies metrics). Empty tokens (an unset `${VAR:-}`)
 * are no tokens.
 */
export function scopedTokens(
  admin: Pick<AdminConfig, "token" | "ingest_tokens" | "tokens">,
): ScopedToken[] {
  const out: ScopedToken[] = [];
  if (admin.token) {
    out.push({ token: admin.token, scopes: new Set(["admin", "read", "ingest", "metrics"]) });
  }
  for (const token of admin.ingest_tokens) {
    if (token) out.push({ token, scopes: new Set(["ingest"]) });
  }
  for (const { token, scopes } of admin.tokens) {
    if (token) out.push({ token, scopes: new Set(scopes.flatMap((s) => IMPLIED[s])) });
  }
  return out;
}

/** Splits `host:port` (IPv6 in brackets). */
export function parseListen(listen: string): { hostname: string; port: number } {
  const match = listen.match(/^\[?([^\]]+?)\]?:(\d+)$/);
  if (!match) throw new Error(`Invalid listen address "${listen}"; expected "host:port"`);
  const port = Number(match[2]);
  if (port > 65535) throw new Error(`Invalid port in "${listen}"`);
  return { hostname: match[1]!, port };
}

/** Whether an address only accepts connections from this machine. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\./.test(h) || h.endsWith(".localhost");
}

/** Whether an address listens on every interface. */
export function isWildcard(hostname: string): boolean {
  return ["0.0.0.0", "::", "[::]", ""].includes(hostname);
}

/**
 * Why the admin API must not listen where `admin` says, or `undefined`:
 * beyond loopback, a token with the read or admin scope is required, or
 * anyone who can reach the address could read and change state.
 */
export function exposureProblem(
  admin: Pick<AdminConfig, "enabled" | "listen" | "token" | "ingest_tokens" | "tokens">,
): string | undefined {
  if (!admin.enabled) return undefined;
  let hostname: string;
  try {
    hostname = parseListen(admin.listen).hostname;
  } catch {
    return undefined;
  }
  if (isLoopback(hostname)) return undefined;
  const guarded = scopedTokens(admin).some((t) => t.scopes.has("admin") || t.scopes.has("read"));
  if (guarded) return undefined;
  return `The admin API would listen on ${JSON.stringify(admin.listen)}, beyond loopback, ` +
    "without a token: anyone who can reach it could read and change state. Set admin.token " +
    '(e.g. "${TELEMETRY_ADMIN_TOKEN}") or listen on 127.0.0.1';
}

/**
 * The Host names the API answers (lower case, without port); `undefined`
 * means any. Default: the loopback names and the host of `admin.listen`;
 * any host when it listens on every interface (a token guards it then).
 */
export function allowedHosts(
  admin: Pick<AdminConfig, "listen" | "allowed_hosts">,
): ReadonlySet<string> | undefined {
  if (admin.allowed_hosts) {
    if (admin.allowed_hosts.includes("*")) return undefined;
    return new Set(admin.allowed_hosts.map(normalHost));
  }
  const { hostname } = parseListen(admin.listen);
  if (isWildcard(hostname)) return undefined;
  return new Set(["localhost", "127.0.0.1", "::1", normalHost(hostname)]);
}

/** A Host name as compared: lower case, no brackets, no port. */
export function normalHost(host: string): string {
  const h = host.trim().toLowerCase();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (bracketed) return bracketed[1]!;
  // More than one colon and no brackets: a bare IPv6 address.
  if ((h.match(/:/g) ?? []).length > 1) return h;
  return h.replace(/:\d*$/, "").replace(/\.$/, "");
}

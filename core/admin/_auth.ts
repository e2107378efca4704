/**
 * Bearer-token checks, compared in constant time.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { ScopedToken } from "../config/admin.ts";
import type { TokenScope } from "../config/schema.ts";

function digest(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

function bearer(header: string | undefined): Uint8Array | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match ? digest(match[1]!) : undefined;
}

/**
 * Whether the `Authorization` header carries one of `tokens`. Hashing first
 * makes every comparison the same length, so timing reveals nothing.
 */
export function bearerMatches(header: string | undefined, tokens: readonly string[]): boolean {
  return bearerScopes(header, tokens.map((token) => ({ token, scopes: new Set() }))) !== undefined;
}

/**
 * The scopes of the token the `Authorization` header carries (the union,
 * should the same token be configured twice); `undefined` when it carries
 * none of `tokens`. Every token is compared, in constant time.
 */
export function bearerScopes(
  header: string | undefined,
  tokens: readonly ScopedToken[],
): Set<TokenScope> | undefined {
  const given = bearer(header);
  if (!given) return undefined;
  let found: Set<TokenScope> | undefined;
  for (const { token, scopes } of tokens) {
    if (timingSafeEqual(given, digest(token))) {
      found ??= new Set();
      for (const s of scopes) found.add(s);
    }
  }
  return found;
}

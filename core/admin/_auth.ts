/**
 * Bearer-token checks, compared in constant time.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

function digest(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

/**
 * Whether the `Authorization` header carries one of `tokens`. Hashing first
 * makes every comparison the same length, so timing reveals nothing.
 */
export function bearerMatches(header: string | undefined, tokens: readonly string[]): boolean {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  if (!match) return false;
  const given = digest(match[1]!);
  let ok = false;
  for (const token of tokens) {
    if (timingSafeEqual(given, digest(token))) ok = true;
  }
  return ok;
}

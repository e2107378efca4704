/**
 * Request bodies with a size limit, shared by every route that reads one.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "@hono/hono";
import { problem } from "./_problem.ts";

/** Reads `stream` whole; `null` once it passes `max` bytes (the rest is not read). */
export async function readCapped(
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

/** A 413 problem. */
export const tooLarge = (c: Context, max: number, what = "Bodies are") =>
  problem(c, 413, "Payload too large", `${what} limited to ${max} bytes`);

/**
 * Refuses bodies over `max` bytes with 413: at once when Content-Length says
 * so, and while reading when the body is chunked (never buffered whole).
 * Hono's own middleware re-wraps every body stream, which cost more than
 * the rest of an ingest request.
 */
export function bodyLimit(max: number): MiddlewareHandler {
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

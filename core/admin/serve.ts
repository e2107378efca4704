/**
 * Listening: the only place the admin app binds a socket.
 *
 * @module
 */
import type { Hono } from "@hono/hono";
import type { Logger } from "../log.ts";

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
  return hostname === "localhost" || hostname === "::1" || /^127\./.test(hostname);
}

/** Serves `app` on `listen` until `signal` aborts; resolves once listening. */
export function serveAdmin(
  app: Hono,
  options: { listen: string; hasToken: boolean; logger: Logger; signal: AbortSignal },
): Promise<{ server: Deno.HttpServer<Deno.NetAddr>; address: string }> {
  const { hostname, port } = parseListen(options.listen);
  if (!isLoopback(hostname) && !options.hasToken) {
    options.logger.warn(
      "ADMIN API EXPOSED WITHOUT A TOKEN: anyone who can reach this address can change " +
        "state; set admin.token (e.g. ${TELEMETRY_ADMIN_TOKEN}) or listen on 127.0.0.1",
      { listen: options.listen },
    );
  }
  // onListen runs inside Deno.serve(), before it returns the server.
  let address = "";
  const server = Deno.serve({
    hostname,
    port,
    signal: options.signal,
    onListen: (addr) => {
      address = `${
        addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname
      }:${addr.port}`;
    },
  }, app.fetch);
  options.logger.info("Admin API listening", { address });
  return Promise.resolve({ server, address });
}

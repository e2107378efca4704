/**
 * The image's HEALTHCHECK: exits 0 when the admin API of this container answers `GET /readyz`
 * (or the path given as the first argument, e.g. `/healthz`) with 200, 1 otherwise. It needs no
 * tool beyond Deno, and only `--allow-env=TELEMETRY_ADMIN_LISTEN --allow-net`.
 *
 * The address is `TELEMETRY_ADMIN_LISTEN` (default `127.0.0.1:8080`, as in telemetry.yaml); a
 * wildcard host (`0.0.0.0`, `::`) is reached on loopback.
 *
 * @module
 */
import { isWildcard, parseListen } from "../core/config/admin.ts";

const listen = Deno.env.get("TELEMETRY_ADMIN_LISTEN") || "127.0.0.1:8080";
const { hostname, port } = parseListen(listen);
const host = isWildcard(hostname)
  ? "127.0.0.1"
  : hostname.includes(":")
  ? `[${hostname}]`
  : hostname;
const path = Deno.args[0] ?? "/readyz";
try {
  const res = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(4_000) });
  const body = await res.text();
  if (!res.ok) {
    console.error(`${path} answered ${res.status}: ${body.slice(0, 500)}`);
    Deno.exit(1);
  }
} catch (error) {
  console.error(`${path} did not answer: ${error instanceof Error ? error.message : error}`);
  Deno.exit(1);
}

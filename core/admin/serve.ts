/**
 * Listening: the only place the admin app binds a socket, over HTTP or,
 * with `admin.tls`, HTTPS.
 *
 * @module
 */
import { resolve } from "node:path";
import { type AdminConfig, exposureProblem, isLoopback, parseListen } from "../config/admin.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";

export { isLoopback, parseListen };

/** Options of {@link serveAdmin}. */
export interface ServeOptions {
  /** The admin settings: listen address, tokens (checked again here), TLS files. */
  admin: Pick<AdminConfig, "enabled" | "listen" | "token" | "ingest_tokens" | "tokens" | "tls">;
  /** Directory relative certificate paths resolve against (the config file's). */
  baseDir?: string;
  logger: Logger;
  /** Stops serving when aborted. */
  signal: AbortSignal;
}

/** A listening admin API. */
export interface AdminListener {
  /** `host:port` actually bound (the port is chosen when 0 was asked). */
  readonly address: string;
  /** `"https"` with `admin.tls`, else `"http"`. */
  readonly scheme: "http" | "https";
  /** Settles once the server (the current one, after TLS reloads) has stopped. */
  readonly finished: Promise<void>;
  /**
   * Re-reads the certificate and key files; when they changed, serves them
   * from now on (the listener is rebound on the same address; open
   * connections finish on the old one). Unreadable files keep the old ones.
   */
  reloadTls(): Promise<"unchanged" | "reloaded" | "failed">;
}

/** How long a TLS reload waits for the old listener to free its address. */
const REBIND_TIMEOUT_MS = 5_000;

interface KeyPair {
  cert: string;
  key: string;
}

async function readKeyPair(
  tls: NonNullable<AdminConfig["tls"]>,
  baseDir: string,
): Promise<KeyPair> {
  const [cert, key] = await Promise.all([
    Deno.readTextFile(resolve(baseDir, tls.cert_file)),
    Deno.readTextFile(resolve(baseDir, tls.key_file)),
  ]);
  return { cert, key };
}

/**
 * Serves `app` on `admin.listen` until `signal` aborts; resolves once
 * listening. Refuses to listen beyond loopback without a token (the config
 * check says so first; this keeps any other caller from doing it).
 */
export async function serveAdmin(
  app: { fetch: (request: Request) => Response | Promise<Response> },
  options: ServeOptions,
): Promise<AdminListener> {
  const { admin, baseDir = Deno.cwd(), logger, signal } = options;
  const exposed = exposureProblem({ ...admin, enabled: true });
  if (exposed) throw new Error(exposed);
  const { hostname, port: asked } = parseListen(admin.listen);
  let pair = admin.tls ? await readKeyPair(admin.tls, baseDir) : undefined;
  let port = asked;
  let address = "";
  let current: { server: Deno.HttpServer<Deno.NetAddr>; abort: AbortController } | undefined;

  const listen = (keys: KeyPair | undefined) => {
    const abort = new AbortController();
    // onListen runs inside Deno.serve(), before it returns the server.
    const server = Deno.serve({
      hostname,
      port,
      signal: AbortSignal.any([signal, abort.signal]),
      ...(keys ?? {}),
      onListen: (addr) => {
        port = addr.port;
        address = `${
          addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname
        }:${addr.port}`;
      },
    }, app.fetch);
    current = { server, abort };
  };
  /** {@link listen}, retried while the previous listener still holds the address. */
  const listenWhenFree = async (keys: KeyPair | undefined) => {
    const deadline = Date.now() + REBIND_TIMEOUT_MS;
    for (;;) {
      try {
        return listen(keys);
      } catch (error) {
        if (!(error instanceof Deno.errors.AddrInUse) || Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  listen(pair);
  const scheme = pair ? "https" : "http";
  logger.info("Admin API listening", { address, scheme });

  const stopped = Promise.withResolvers<void>();
  // The current server at the time of the outer abort is the last one.
  signal.addEventListener("abort", () => {
    current!.server.finished.then(stopped.resolve, stopped.resolve);
  }, { once: true });

  return {
    get address() {
      return address;
    },
    scheme,
    finished: stopped.promise,
    async reloadTls() {
      if (!admin.tls || signal.aborted) return "unchanged";
      let next: KeyPair;
      try {
        next = await readKeyPair(admin.tls, baseDir);
      } catch (error) {
        logger.error("Cannot re-read the admin TLS files; keeping the ones in use", {
          error: errorMessage(error),
        });
        return "failed";
      }
      if (next.cert === pair?.cert && next.key === pair.key) return "unchanged";
      // Stop accepting, then bind the same address again: the old listener
      // closes a moment after the abort (open connections finish on it).
      current!.abort.abort();
      try {
        await listenWhenFree(next);
      } catch (error) {
        logger.error("Cannot serve the renewed admin TLS files; keeping the ones in use", {
          error: errorMessage(error),
        });
        await listenWhenFree(pair);
        return "failed";
      }
      pair = next;
      logger.info("Admin API serves renewed TLS files", { address });
      return "reloaded";
    },
  };
}

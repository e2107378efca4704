/**
 * OPC UA for tests and the bench: a node-opcua server (`opcua_server.ts`)
 * in its own Deno process on a free port, stopped by its pid and started
 * again on the same port.
 *
 * @module
 */
import { requireService } from "./services.ts";
import { freePort } from "./tools.ts";

const SCRIPT = new URL("./opcua_server.ts", import.meta.url).pathname;

/** Whether node-opcua loads here (required under `CI=true`). */
export const HAVE_OPCUA = await requireService(
  "npm node-opcua (pinned in deno.json)",
  () => import("node-opcua-client"),
);

/** Options of {@link startOpcuaServer}. */
export interface OpcuaServerOptions {
  port?: number;
  /** Server PKI folder: offers SignAndEncrypt with Basic256Sha256 only. */
  pki?: string;
  /** Milliseconds between changes (default 100). */
  every?: number;
  /** Number of `Bench.V<i>` variables. */
  bench?: number;
}

/** A running test server. */
export interface OpcuaServer {
  endpoint: string;
  port: number;
  pid: number;
  /** Kills the process (SIGKILL by default) and waits for it. */
  kill(signal?: Deno.Signal): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<OpcuaServer>;
  /** The last of what the server wrote on stderr, for failure messages. */
  log(): string;
  /** With `bench`: the changes the server made so far (it reports them each second). */
  changes(): number;
}

/** Starts the test server and resolves once it prints `ready <endpoint>` (or throws after `ms`). */
export async function startOpcuaServer(
  options: OpcuaServerOptions = {},
  ms = 60_000,
): Promise<OpcuaServer> {
  const port = options.port ?? freePort();
  const args = ["run", "-A", SCRIPT, "--port", String(port)];
  if (options.pki) args.push("--pki", options.pki);
  if (options.every) args.push("--every", String(options.every));
  if (options.bench) args.push("--bench", String(options.bench));
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errors: string[] = [];
  // Kept draining, so a chatty server never blocks on a full pipe.
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      errors.push(chunk);
      if (errors.length > 200) errors.shift();
    }
  })().catch(() => {});
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  try {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) {
        throw new Error(`The OPC UA test server exited before listening: ${errors.join("")}`);
      }
      text += value;
      const ready = /ready \S+\n/.exec(text);
      if (ready) {
        text = text.slice(ready.index + ready[0].length);
        break;
      }
    }
  } finally {
    clearTimeout(timer);
  }
  let changes = 0;
  (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return;
      text += value;
      const end = text.lastIndexOf("\n");
      if (end < 0) continue;
      for (const m of text.slice(0, end).matchAll(/^changes (\d+)$/gm)) changes += Number(m[1]);
      text = text.slice(end + 1);
    }
  })().catch(() => {});
  let gone = false;
  const server: OpcuaServer = {
    endpoint: `opc.tcp://127.0.0.1:${port}/UA/TelemetryHubTest`,
    port,
    pid: child.pid,
    async kill(signal: Deno.Signal = "SIGKILL") {
      if (!gone) {
        gone = true;
        try {
          Deno.kill(child.pid, signal);
        } catch { /* already gone */ }
      }
      await child.status;
    },
    restart: () => startOpcuaServer({ ...options, port }, ms),
    changes: () => changes,
    log: () => errors.join(""),
  };
  return server;
}

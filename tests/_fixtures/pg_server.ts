/**
 * A private PostgreSQL server for tests that stop and restart it: its own
 * data directory (owned by the `postgres` user, since the server refuses
 * to run as root) and a free port. Stopped by its data directory's pid,
 * never by name.
 *
 * @module
 */
import { freePort } from "./tools.ts";

async function run(cmd: string[], asPostgres: boolean): Promise<string> {
  const args = asPostgres && Deno.uid() === 0 ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
  const out = await new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`Command "${args.join(" ")}" failed: ${text}`);
  return text;
}

async function binDir(): Promise<string> {
  for await (const e of Deno.readDir("/usr/lib/postgresql")) {
    if (e.isDirectory) return `/usr/lib/postgresql/${e.name}/bin`;
  }
  throw new Error('No PostgreSQL binaries under "/usr/lib/postgresql"');
}

/** A running private server. */
export interface PgServer {
  url: string;
  port: number;
  start(): Promise<void>;
  /**
   * Stops the server through its pid file (`pg_ctl stop`). `fast` (the
   * default, SIGINT) terminates open connections and checkpoints;
   * `immediate` (SIGQUIT) kills every server process at once, like a crash,
   * and the next start recovers from the WAL.
   */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Stops the server (if running) and removes its directory. */
  destroy(): Promise<void>;
}

/** Creates and starts a private server with database `postgres`. */
export async function startPgServer(): Promise<PgServer> {
  const bin = await binDir();
  const dir = await Deno.makeTempDir({ prefix: "th_pg_" });
  if (Deno.uid() === 0) await run(["chown", "postgres:postgres", dir], false);
  await Deno.chmod(dir, 0o700);
  const data = `${dir}/data`;
  const port = freePort();
  await run([`${bin}/initdb`, "-D", data, "-U", "postgres", "--auth=trust", "-N"], true);
  let running = false;
  const server: PgServer = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async start() {
      await run([
        `${bin}/pg_ctl`,
        "-D",
        data,
        "-o",
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
        "-l",
        `${dir}/log`,
        "-w",
        "start",
      ], true);
      running = true;
    },
    async stop(mode = "fast") {
      await run([`${bin}/pg_ctl`, "-D", data, "-m", mode, "-w", "stop"], true);
      running = false;
    },
    async destroy() {
      if (running) await server.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
  await server.start();
  return server;
}

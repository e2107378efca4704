/**
 * The two engines behind one small interface: real PostgreSQL through npm
 * `postgres` (a pool of sockets with Nagle's algorithm off) and embedded
 * PGlite (loaded lazily, one instance per data directory), plus the mapping
 * of their errors to retryable and permanent ones.
 *
 * @module
 */
import { connect, type Socket } from "node:net";
import { setImmediate } from "node:timers";
import { errorMessage, PermanentError, RetryableError } from "../../core/mod.ts";

/** Rows and the number of rows a statement affected. */
export interface QueryResult {
  rows: Record<string, unknown>[];
  count: number;
}

/** Runs statements on a connection or inside a transaction. */
export interface Executor {
  /** One statement with `$n` parameters (strings, numbers or null). */
  query(text: string, params?: readonly (string | number | null)[]): Promise<QueryResult>;
  /** Several statements, no parameters. */
  exec(text: string): Promise<void>;
}

/** An open engine. */
export interface Driver extends Executor {
  readonly kind: "postgres" | "pglite";
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Connection settings of the PostgreSQL driver. */
export interface PostgresDriverOptions {
  url: string;
  pool: number;
  connectTimeoutMs: number;
}

/**
 * npm `postgres` leaves Nagle's algorithm on, and every COPY or large
 * statement then stalls 40–90 ms waiting for an ACK; its `socket` option
 * lets us hand it a socket with `setNoDelay(true)`. The socket is returned
 * before it connects (writes wait in its buffer): a refused connection then
 * reaches postgres.js as the usual `error` and `close` events, which return
 * the connection to its pool. A factory that rejected instead would leave
 * the connection stuck in "connecting" and hang every later query.
 */
function noDelaySocket(options: { host: string[]; port: number[]; path?: string | false }): Socket {
  const socket = options.path
    ? connect(options.path)
    : connect({ host: options.host[0] ?? "localhost", port: options.port[0] ?? 5432 });
  socket.setNoDelay(true);
  socket.once("connect", () => socket.setNoDelay(true));
  return socket;
}

/** Opens a pool on a PostgreSQL server (connections are made on first use). */
export async function openPostgres(options: PostgresDriverOptions): Promise<Driver> {
  const { default: postgres } = await import("postgres");
  const settings = {
    max: options.pool,
    connect_timeout: Math.max(1, Math.ceil(options.connectTimeoutMs / 1000)),
    idle_timeout: 60,
    onnotice: () => {},
    connection: { application_name: "telemetryhub" },
    // Supported by postgres.js (connection.js awaits it) but missing from its typings.
    socket: noDelaySocket,
  };
  const sql = postgres(options.url, settings as Parameters<typeof postgres>[1]);
  type Sql = typeof sql;
  function executor(s: Pick<Sql, "unsafe">): Executor {
    return {
      async query(text, params = []) {
        const result = await s.unsafe(text, params as (string | number | null)[]);
        return { rows: [...result] as Record<string, unknown>[], count: result.count ?? 0 };
      },
      async exec(text) {
        await s.unsafe(text);
      },
    };
  }
  return {
    kind: "postgres",
    ...executor(sql),
    async transaction(fn) {
      return await sql.begin((tx) => fn(executor(tx))) as Awaited<ReturnType<typeof fn>>;
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}

/**
 * PGlite runs each statement synchronously on this thread and settles its
 * promises as microtasks; under steady load timers and I/O (device reads,
 * the admin API) would starve. One event-loop turn per statement lets them run.
 */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Opens (creating when needed) a PGlite database in `dataDir`. */
export async function openPglite(dataDir: string): Promise<Driver> {
  await Deno.mkdir(dataDir, { recursive: true });
  const lock = await lockDataDir(dataDir);
  const { PGlite } = await import("@electric-sql/pglite");
  let db;
  try {
    db = await PGlite.create(dataDir);
  } catch (error) {
    lock.close();
    throw error;
  }
  type Tx = Pick<typeof db, "query" | "exec">;
  function executor(s: Tx): Executor {
    return {
      async query(text, params = []) {
        const result = await s.query<Record<string, unknown>>(text, [...params]);
        await turn();
        return { rows: result.rows, count: result.affectedRows ?? result.rows.length };
      },
      async exec(text) {
        await s.exec(text);
      },
    };
  }
  return {
    kind: "pglite",
    ...executor(db),
    transaction: (fn) => db.transaction((tx) => fn(executor(tx))),
    async close() {
      try {
        await db.close();
      } finally {
        lock.close();
      }
    },
  };
}

/**
 * Takes the lock file beside a PGlite data directory (`<dir>.lock`):
 * PGlite takes none, and a second process opening the same directory, even
 * just to start, corrupts it. The lock is an advisory `flock`, so the
 * system drops it when the holder dies; the file keeps the holder's pid for
 * people. Throws, naming that pid, when another process holds it.
 */
async function lockDataDir(dataDir: string): Promise<Deno.FsFile> {
  const path = `${dataDir.replace(/\/+$/, "")}.lock`;
  const file = await Deno.open(path, { read: true, write: true, create: true });
  let locked = false;
  try {
    locked = await file.tryLock(true);
    if (!locked) {
      const holder = (await Deno.readTextFile(path).catch(() => "")).trim();
      throw new Error(
        `The PGlite data directory "${dataDir}" is in use by another process` +
          `${holder ? ` (pid ${holder})` : ""}: PGlite serves one process at a time. Stop that ` +
          "process, give this one another data_dir, or use PostgreSQL (url)",
      );
    }
    await file.truncate();
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    return file;
  } finally {
    if (!locked) file.close();
  }
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

/**
 * SQLSTATEs worth retrying: connection exceptions (08), shutdown and
 * start-up (57P01–57P03), too many connections, serialization failures and
 * deadlocks (class 40), lock timeouts.
 */
function isTransient(code: string): boolean {
  return code.startsWith("08") || code.startsWith("40") || code.startsWith("53") ||
    code === "57P01" || code === "57P02" || code === "57P03" || code === "55P03" ||
    code === "57014";
}

/** The SQLSTATE or system error code of a driver error, if any. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/**
 * Maps a driver error to what the runtime should do: connection trouble
 * and transient server states are a {@link RetryableError}; data errors
 * (SQLSTATE class 22), constraint violations (23) and statements the server
 * rejects (42) fail the same way every time, a {@link PermanentError}.
 * Anything else is retried. `what` starts the message, e.g.
 * `Cannot store 1000 samples`.
 */
export function classifyError(error: unknown, what: string): Error {
  if (error instanceof RetryableError || error instanceof PermanentError) return error;
  const code = errorCode(error);
  const message = errorMessage(error);
  if (code && (CONNECTION_CODES.has(code) || /^E[A-Z]+$/.test(code))) {
    return new RetryableError(`${what}: database unreachable (${code}): ${message}`, {
      cause: error,
    });
  }
  if (code && /^(22|23|42)/.test(code)) {
    return new PermanentError(`${what}: ${message} (SQLSTATE ${code})`, { cause: error });
  }
  if (code && isTransient(code)) {
    return new RetryableError(`${what}: ${message} (SQLSTATE ${code})`, { cause: error });
  }
  return new RetryableError(`${what}: ${message}`, { cause: error });
}

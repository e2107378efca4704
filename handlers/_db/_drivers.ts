/**
 * The two engines behind one small interface: real PostgreSQL through npm
 * `postgres` (a pool of sockets with Nagle's algorithm off) and embedded
 * PGlite (loaded lazily, one instance per data directory), plus the mapping
 * of their errors to retryable and permanent ones.
 *
 * There is deliberately no multi-statement transaction on this interface:
 * every write is one statement (or one script, atomic as an implicit
 * transaction). npm `postgres` 3.4.9 runs a transaction (`sql.begin()`,
 * `sql.reserve()`) on a pinned connection, and when the server goes away
 * mid-transaction its own ROLLBACK is written to the connection's socket
 * after it was set to null: an uncaught `TypeError: Cannot read properties
 * of null (reading 'write')` from a `setImmediate` that no caller can catch,
 * and the process dies (porsager/postgres#1154, #1208; unfixed upstream).
 * Pooled statements never reach a closed connection: the pool moves it
 * aside and reconnects it for the next statement.
 *
 * @module
 */
import { connect, type Socket } from "node:net";
import { setImmediate } from "node:timers";
import { errorMessage, PermanentError, RetryableError, UnavailableError } from "../../core/mod.ts";

/** Rows and the number of rows a statement affected. */
export interface QueryResult {
  rows: Record<string, unknown>[];
  count: number;
}

/** Runs statements on a connection or inside a transaction. */
export interface Executor {
  /** One statement with `$n` parameters (strings, numbers or null). */
  query(text: string, params?: readonly (string | number | null)[]): Promise<QueryResult>;
  /**
   * Several statements, no parameters, as one implicit transaction (all or
   * nothing). Resolves the rows of the last statement that returns rows.
   */
  exec(text: string): Promise<Record<string, unknown>[]>;
}

/** An open engine. */
export interface Driver extends Executor {
  readonly kind: "postgres" | "pglite";
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
export function noDelaySocket(
  options: { host: string[]; port: number[]; path?: string | false },
): Socket {
  const socket = options.path
    ? connect(options.path)
    : connect({ host: options.host[0] ?? "localhost", port: options.port[0] ?? 5432 });
  socket.setNoDelay(true);
  socket.once("connect", () => socket.setNoDelay(true));
  return dropsLateErrors(socket);
}

/**
 * postgres.js removes every listener of a socket it is done with
 * (`removeAllListeners()`), and a write it had queued can still fail on that
 * socket afterwards (EPIPE, "This socket has been ended by the other party",
 * seen when the server stops under load). An `error` event nobody listens to
 * is thrown by Node's EventEmitter, uncaught, and the process dies. The
 * connection is abandoned by then (postgres.js reconnects a new one), so such
 * a late error is dropped.
 */
export function dropsLateErrors(socket: Socket): Socket {
  const emit = socket.emit;
  socket.emit = function (this: Socket, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "error" && this.listenerCount("error") === 0) return false;
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as Socket["emit"];
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
    // Reconnect at once when a statement needs a connection: by default postgres.js waits up to
    // 20 s (growing with each refused attempt) before trying, a second retry schedule on top of
    // the pipeline's. With 0 a statement fails fast while the server is down and the task is
    // retried on the pipeline's schedule.
    backoff: () => 0,
    connection: { application_name: "telemetryhub" },
    // Supported by postgres.js (connection.js awaits it) but missing from its typings.
    socket: noDelaySocket,
  };
  const sql = postgres(options.url, settings as Parameters<typeof postgres>[1]);
  return {
    kind: "postgres",
    async query(text, params = []) {
      const result = await sql.unsafe(text, params as (string | number | null)[]);
      return { rows: [...result] as Record<string, unknown>[], count: result.count ?? 0 };
    },
    async exec(text) {
      // One result is its rows; several are an array of them (statements without rows left out).
      const result: unknown[] = [...await sql.unsafe(text)];
      const last = Array.isArray(result[0]) ? result.at(-1) : result;
      return (last ?? []) as Record<string, unknown>[];
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
  return {
    kind: "pglite",
    async query(text, params = []) {
      const result = await db.query<Record<string, unknown>>(text, [...params]);
      await turn();
      return { rows: result.rows, count: result.affectedRows ?? result.rows.length };
    },
    async exec(text) {
      const results = await db.exec(text);
      await turn();
      return (results.findLast((r) => r.fields.length > 0)?.rows ?? []) as Record<
        string,
        unknown
      >[];
    },
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
 * Whether `error` (from the driver, or mapped by {@link classifyError})
 * means the database cannot be reached: no connection, a connection lost,
 * or a server shutting down or starting up (SQLSTATE classes 08 and 57P).
 * Not for errors of one statement such as deadlocks or bad data.
 */
export function isOutage(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const code = errorCode(e);
    if (code) {
      return CONNECTION_CODES.has(code) || /^E[A-Z]+$/.test(code) || code.startsWith("08") ||
        code.startsWith("57P");
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Maps a driver error to what the runtime should do: an outage (no
 * connection, a server shutting down or starting up, see {@link isOutage})
 * is an {@link UnavailableError}, other transient server states a
 * {@link RetryableError}; data errors
 * (SQLSTATE class 22), constraint violations (23) and statements the server
 * rejects (42) fail the same way every time, a {@link PermanentError}.
 * Anything else is retried. `what` starts the message, e.g.
 * `Cannot store 1000 samples`.
 */
export function classifyError(error: unknown, what: string): Error {
  if (error instanceof RetryableError || error instanceof PermanentError) return error;
  const code = errorCode(error);
  const message = errorMessage(error);
  if (isOutage(error)) {
    // The database is down, not this task: the runtime holds tasks without spending attempts.
    return new UnavailableError(`${what}: database unreachable (${code}): ${message}`, {
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

/**
 * Opening the SQLite broker's file: where it is, the owner lock that tells
 * other processes this one is alive, the connection's pragmas, and the
 * worker that checkpoints the log into the file.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { errorMessage, type Logger } from "../../core/mod.ts";
import type { SqliteBrokerOptions } from "./_config.ts";
import { openBrokerDatabase, OwnerLocks } from "./_db.ts";

/** How often the worker checkpoints the log into the database file. */
const CHECKPOINT_MS = 100;

/** `path` against `baseDir` unless it is absolute or `:memory:`. */
export function resolvePath(path: string, baseDir: string): string {
  if (path.startsWith("/") || path === ":memory:") return path;
  return `${baseDir.replace(/\/$/, "")}/${path.replace(/^\.\//, "")}`;
}

/**
 * Opens `file` and holds `owner`'s lock on it. `maxPageCount` caps the
 * file's size in pages: a full disk, for tests.
 */
export function openFile(
  file: string,
  options: SqliteBrokerOptions,
  owner: string,
  maxPageCount: number | undefined,
): { db: DatabaseSync; locks: OwnerLocks } {
  const db = openBrokerDatabase(file, options.busy_timeout);
  const locks = new OwnerLocks(file);
  try {
    locks.hold(owner);
  } catch (error) {
    db.close();
    throw new Error(`Cannot open broker database "${file}": ${errorMessage(error)}`, {
      cause: error,
    });
  }
  // Commits never fsync on this thread: enqueues wait for the write queue's
  // fsync (full), and checkpoints run in a worker; the high threshold is only
  // a fallback. A 32 MB page cache (SQLite's default is 2 MB) holds a gateway
  // batch of 64 tasks without spilling mid-transaction.
  db.exec(
    "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 32768; PRAGMA cache_size = -32768",
  );
  if (maxPageCount !== undefined) {
    db.exec(`PRAGMA max_page_count = ${Math.trunc(maxPageCount)}`);
  }
  return { db, locks };
}

/** The worker that checkpoints the log into the database file (`_checkpointer.ts`). */
export class Checkpointer {
  readonly #worker: Worker;
  readonly #stopped = Promise.withResolvers<void>();

  /** `closed`: whether the broker is closing (its worker's errors are then not logged). */
  constructor(file: string, log: Logger, closed: () => boolean) {
    this.#worker = new Worker(new URL("./_checkpointer.ts", import.meta.url).href, {
      type: "module",
    });
    this.#worker.onmessage = (event: MessageEvent) => {
      if (event.data === "stopped") return this.#stopped.resolve();
      this.#stopped.resolve();
      if (closed()) return;
      // Commits then checkpoint on this thread (the fallback threshold): slower, still correct.
      log.warn("Cannot checkpoint the broker database in a worker", {
        file,
        error: String(event.data?.error),
      });
    };
    // An error in the worker must never reach this process's top level.
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#stopped.resolve();
      if (closed()) return;
      log.warn("Broker checkpoint worker failed", { file, error: event.message });
    };
    this.#worker.postMessage({ file, interval: CHECKPOINT_MS });
  }

  /** Asks the worker to stop after its checkpoint. */
  stop(): void {
    this.#worker.postMessage("stop");
  }

  /** Resolves once the worker stopped, or after 2 s (a checkpoint stuck on a lock). */
  stopped(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      this.#stopped.promise.then(() => (clearTimeout(timer), resolve()));
    });
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

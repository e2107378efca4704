/**
 * The SQLite broker's file: opening it (refusing foreign and corrupt files
 * with a message naming the file), its schema, and how an instance tells
 * whether another one on the same machine is still alive.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { errorMessage } from "../../core/mod.ts";

/** `PRAGMA application_id` of a broker file: "THB1" (TelemetryHub broker). */
export const APPLICATION_ID = 0x54484231;
/** `PRAGMA user_version`: the schema below. */
export const SCHEMA_VERSION = 1;

/** Task states as stored (a subset of `TaskState`: `created` is never stored). */
export const STORED_STATES = [
  "queued",
  "assigned",
  "running",
  "failed",
  "completed",
  "dead_letter",
] as const;

/**
 * One row per task in `tasks` (small, updated at every state change) and its
 * payload in `bodies` (large, written once), so a state change never
 * rewrites the payload. `ord` orders a priority's queue: a released or
 * recovered task keeps its place, so it comes out before later tasks.
 * `counts` is kept by triggers, so depth() reads five rows, never a scan.
 */
const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('back', 0), ('dead_seq', 0), ('token', 0);
CREATE TABLE tasks (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  priority INTEGER NOT NULL,
  state TEXT NOT NULL,
  ord INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  pipeline TEXT,
  checked INTEGER NOT NULL DEFAULT 0,
  worker TEXT,
  owner TEXT,
  token INTEGER,
  due_at INTEGER,
  last_error TEXT,
  completed_at INTEGER,
  dead_lettered_at INTEGER,
  dead_seq INTEGER
);
CREATE TABLE bodies (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL);
CREATE INDEX tasks_queue ON tasks (priority, ord) WHERE state = 'queued';
CREATE INDEX tasks_delayed ON tasks (due_at) WHERE state = 'failed';
CREATE INDEX tasks_held ON tasks (owner) WHERE state IN ('assigned', 'running');
CREATE INDEX tasks_dead ON tasks (dead_seq) WHERE state = 'dead_letter';
CREATE INDEX tasks_done ON tasks (completed_at) WHERE state = 'completed';
CREATE TABLE counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO counts VALUES ${STORED_STATES.map((s) => `('${s}', 0)`).join(", ")};
CREATE TRIGGER tasks_counted_in AFTER INSERT ON tasks BEGIN
  UPDATE counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER tasks_counted_out AFTER DELETE ON tasks BEGIN
  UPDATE counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER tasks_counted_move AFTER UPDATE OF state ON tasks
WHEN OLD.state <> NEW.state BEGIN
  UPDATE counts SET n = n - 1 WHERE state = OLD.state;
  UPDATE counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TABLE owners (
  owner TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  lease_until INTEGER NOT NULL
) WITHOUT ROWID;
PRAGMA application_id = ${APPLICATION_ID};
PRAGMA user_version = ${SCHEMA_VERSION};
`;

/**
 * Opens (creating when missing) the broker file in WAL mode. A file that is
 * not SQLite, or is another application's database, or was written by a
 * newer schema, is refused: `Cannot open broker database "…": …`.
 */
export function openBrokerDatabase(file: string, busyTimeoutMs: number): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    const dir = file.slice(0, Math.max(0, file.lastIndexOf("/")));
    if (dir !== "") Deno.mkdirSync(dir, { recursive: true });
    db = new DatabaseSync(file, { timeout: busyTimeoutMs });
    // The first read of the header: a file that is not SQLite fails here.
    const mode = db.prepare("PRAGMA journal_mode = WAL").get()?.journal_mode;
    if (mode !== "wal") throw new Error(`write-ahead logging is not available (mode "${mode}")`);
    db.exec("BEGIN IMMEDIATE");
    try {
      const appId = Number(db.prepare("PRAGMA application_id").get()?.application_id ?? 0);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()
        .map((r) => String(r.name));
      if (appId === 0 && tables.length === 0) {
        db.exec(SCHEMA);
      } else if (appId !== APPLICATION_ID) {
        throw new Error(
          `it is not a TelemetryHub broker database (application_id ${appId}` +
            (tables.length > 0 ? `, tables ${tables.slice(0, 5).join(", ")})` : ")"),
        );
      } else {
        const version = Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
        if (version !== SCHEMA_VERSION) {
          throw new Error(
            `its schema version ${version} is not ${SCHEMA_VERSION} (written by another ` +
              `version of TelemetryHub)`,
          );
        }
      }
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    return db;
  } catch (error) {
    try {
      db?.close();
    } catch { /* already unusable */ }
    throw new Error(`Cannot open broker database "${file}": ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

/**
 * Tells live broker instances from dead ones on this machine: each instance
 * holds an exclusive lock on its own file in `<database>-owners/` for as
 * long as it runs. The operating system drops the lock when the process
 * ends, however it ends (SIGKILL, OOM kill), so another process that can
 * take the lock knows the owner is gone, at once instead of after its lease.
 */
export class OwnerLocks {
  readonly dir: string;
  #mine: Deno.FsFile | undefined;
  #mineName: string | undefined;

  constructor(file: string) {
    this.dir = `${file}-owners`;
  }

  /** Takes the lock of `owner` (this instance) for as long as it runs. */
  hold(owner: string): void {
    Deno.mkdirSync(this.dir, { recursive: true });
    const name = `${this.dir}/${owner}.lock`;
    const file = Deno.openSync(name, { read: true, write: true, create: true });
    if (!file.tryLockSync(true)) {
      file.close();
      throw new Error(`Lock file "${name}" is held by another process`);
    }
    this.#mine = file;
    this.#mineName = name;
  }

  /**
   * Whether `owner` is known to be gone: its lock file exists and nobody
   * holds it. `false` when that cannot be told (no lock file): its lease
   * then decides. A gone owner's lock file is removed.
   */
  isGone(owner: string): boolean {
    const name = `${this.dir}/${owner}.lock`;
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(name, { read: true, write: true });
    } catch {
      return false;
    }
    try {
      if (!file.tryLockSync(true)) return false;
      Deno.removeSync(name);
      return true;
    } catch {
      return false;
    } finally {
      file.close();
    }
  }

  /**
   * Removes the lock files nobody holds of owners not in `known` (instances
   * that died after their lease had already expired, so no owner row names
   * them any more). Files of known owners are left to recovery.
   */
  sweep(known: ReadonlySet<string>): void {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(this.dir)];
    } catch {
      return;
    }
    for (const entry of entries) {
      const owner = entry.name.slice(0, -".lock".length);
      if (entry.isFile && entry.name.endsWith(".lock") && !known.has(owner)) this.isGone(owner);
    }
  }

  /** Lets go of this instance's lock and removes its file. */
  release(): void {
    if (this.#mineName !== undefined) {
      try {
        Deno.removeSync(this.#mineName);
      } catch { /* already gone */ }
    }
    this.#mine?.close();
    this.#mine = undefined;
    this.#mineName = undefined;
  }
}

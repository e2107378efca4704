/**
 * The SQLite broker's file: opening it (refusing foreign and corrupt files
 * with a message naming the file), its schema, and how a process tells
 * whether another process on the same machine is still alive.
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
  host TEXT NOT NULL,
  started TEXT NOT NULL,
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

/** Who this process is, for other processes on the same machine. */
export interface ProcessIdentity {
  pid: number;
  /** The machine's host name, or "" when it cannot be read. */
  host: string;
  /** The process's start time in clock ticks since boot, or "" when unknown. */
  started: string;
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** Field 22 of `/proc/<pid>/stat` (start time), read after the command's closing parenthesis. */
function startTime(pid: number | "self"): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19]; // fields[0] is field 3 (state)
}

/** This process's identity (Linux `/proc`; empty fields elsewhere). */
export function thisProcess(): ProcessIdentity {
  return {
    pid: Deno.pid,
    host: readText("/proc/sys/kernel/hostname")?.trim() ?? "",
    started: startTime("self") ?? "",
  };
}

/**
 * Whether the process `other` is known to be gone: same machine, and its pid
 * no longer exists or belongs to a process started at another time. `false`
 * when that cannot be told (another machine or container, no `/proc`): its
 * lease then decides.
 */
export function isGone(other: ProcessIdentity, self: ProcessIdentity): boolean {
  if (self.host === "" || other.host !== self.host || other.started === "") return false;
  if (other.pid === self.pid) return other.started !== self.started;
  try {
    Deno.statSync(`/proc/${other.pid}`);
  } catch (error) {
    return error instanceof Deno.errors.NotFound;
  }
  const started = startTime(other.pid);
  return started !== undefined && started !== other.started;
}

/**
 * A worker thread that checkpoints the broker's write-ahead log into the
 * database file, so the copy and its fsync stay off the event loop that
 * runs devices, the gateway and the workers. Started by the broker with
 * `{ file, interval }`; `"stop"` ends it (it answers `"stopped"`). When the
 * file cannot be opened it answers `{ error }` and stops.
 *
 * Each tick runs a PASSIVE checkpoint, which waits for no reader or writer
 * and copies most of the log. Under steady writes it never catches up with
 * the end of the log, and SQLite only starts the log over once a
 * checkpoint has copied all of it: so when the log passes
 * {@link RESTART_FRAMES}, a RESTART checkpoint lets the next commit write
 * from the start again, keeping the file's size bounded. A RESTART holds
 * writers off while it copies the few frames left and fsyncs the database
 * file (milliseconds, which the event loop then waits), hence the large
 * threshold: rarely, not every few seconds.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { DatabaseSync, type StatementSync } from "node:sqlite";

/** Log size (in 4 KB pages: 64 MB) past which the log is started over. */
const RESTART_FRAMES = 16_384;
/** Longest a RESTART waits for a writer or reader (then it tries next tick). */
const RESTART_WAIT_MS = 20;

let db: DatabaseSync | undefined;
let timer: ReturnType<typeof setInterval> | undefined;

self.onmessage = (event: MessageEvent<{ file: string; interval: number } | "stop">) => {
  const message = event.data;
  if (message === "stop") {
    clearInterval(timer);
    try {
      db?.close();
    } catch { /* closed */ }
    self.postMessage("stopped");
    self.close();
    return;
  }
  let passive: StatementSync;
  let restart: StatementSync;
  try {
    db = new DatabaseSync(message.file, { timeout: RESTART_WAIT_MS });
    passive = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
    restart = db.prepare("PRAGMA wal_checkpoint(RESTART)");
  } catch (error) {
    self.postMessage({ error: (error as Error).message });
    try {
      db?.close();
    } catch { /* not open */ }
    self.close();
    return;
  }
  timer = setInterval(() => {
    try {
      const result = passive.get();
      if (Number(result?.log ?? 0) > RESTART_FRAMES) restart.get();
    } catch { /* busy: another process is checkpointing; try again next tick */ }
  }, message.interval);
};

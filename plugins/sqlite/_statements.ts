/**
 * Every SQL statement of the SQLite broker, prepared once per connection,
 * and the argument order of the dead-letter filters.
 *
 * @module
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import type { DeadLetterSelector } from "../../core/mod.ts";

/** `ids`, `type`, `pipeline` as the dead-letter statements take them. */
export function filterArgs(selector: DeadLetterSelector): SQLInputValue[] {
  return [
    selector.ids === undefined ? null : JSON.stringify(selector.ids),
    selector.type ?? null,
    selector.pipeline ?? null,
  ];
}

const DEAD_FILTER = `
  AND (?1 IS NULL OR t.id IN (SELECT value FROM json_each(?1)))
  AND (?2 IS NULL OR t.type = ?2)
  AND (?3 IS NULL OR t.pipeline = ?3)`;

/** Every statement, prepared once. */
export function prepare(db: DatabaseSync) {
  const p = (sql: string): StatementSync => db.prepare(sql);
  return {
    begin: p("BEGIN IMMEDIATE"),
    commit: p("COMMIT"),
    savepoint: p("SAVEPOINT op"),
    releaseOp: p("RELEASE op"),
    rollbackTo: p("ROLLBACK TO op"),
    dataVersion: p("PRAGMA data_version"),
    meta: p("SELECT key, value FROM meta"),
    setMeta: p("UPDATE meta SET value = ? WHERE key = ?"),
    count: p("SELECT n FROM counts WHERE state = ?"),
    counts: p("SELECT state, n FROM counts"),
    insertTask: p(
      `INSERT INTO tasks (id, type, priority, state, ord, attempts, created_at, updated_at,
         pipeline, checked) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)`,
    ),
    insertBody: p("INSERT INTO bodies (seq, payload) VALUES (?, ?)"),
    stateOf: p("SELECT seq, state FROM tasks WHERE id = ?"),
    deleteTask: p("DELETE FROM tasks WHERE seq = ?"),
    deleteBody: p("DELETE FROM bodies WHERE seq = ?"),
    queued: p(
      "SELECT seq FROM tasks WHERE state = 'queued' AND priority = ? ORDER BY ord LIMIT ?",
    ),
    assign: p(
      `UPDATE tasks SET state = 'assigned', worker = ?, owner = ?, token = ?, updated_at = ?
       WHERE seq IN (SELECT value FROM json_each(?))`,
    ),
    rowsOf: p(
      `SELECT seq, id, type, priority, attempts, created_at, pipeline, checked FROM tasks
       WHERE seq IN (SELECT value FROM json_each(?))`,
    ),
    payloadsOf: p("SELECT seq, payload FROM bodies WHERE seq IN (SELECT value FROM json_each(?))"),
    earliestDue: p("SELECT min(due_at) AS due FROM tasks WHERE state = 'failed'"),
    dueNow: p(
      "SELECT seq FROM tasks WHERE state = 'failed' AND due_at <= ? ORDER BY due_at, seq LIMIT ?",
    ),
    promote: p(
      "UPDATE tasks SET state = 'queued', ord = ?, updated_at = ?, due_at = NULL WHERE seq = ?",
    ),
    start: p(
      `UPDATE tasks SET state = 'running', updated_at = ?
       WHERE seq = ? AND token = ? AND state = 'assigned'`,
    ),
    complete: p(
      `UPDATE tasks SET state = 'completed', attempts = ?, updated_at = ?, completed_at = ?,
         owner = NULL, token = NULL WHERE seq = ? AND token = ?`,
    ),
    forget: p("DELETE FROM tasks WHERE seq = ? AND token = ?"),
    retry: p(
      `UPDATE tasks SET state = 'failed', attempts = ?, updated_at = ?, due_at = ?,
         last_error = ?, owner = NULL, token = NULL WHERE seq = ? AND token = ?`,
    ),
    dead: p(
      `UPDATE tasks SET state = 'dead_letter', attempts = ?, updated_at = ?,
         dead_lettered_at = ?, dead_seq = ?, last_error = ?, owner = NULL, token = NULL
       WHERE seq = ? AND token = ?`,
    ),
    replaceTask: p(
      "UPDATE tasks SET type = ?, pipeline = ?, checked = ?, priority = ? WHERE seq = ?",
    ),
    replaceBody: p("UPDATE bodies SET payload = ? WHERE seq = ?"),
    release: p(
      `UPDATE tasks SET state = 'queued', updated_at = ?, owner = NULL, token = NULL
       WHERE seq = ? AND token = ?`,
    ),
    releaseOwner: p(
      `UPDATE tasks SET state = 'queued', updated_at = ?1, owner = NULL, token = NULL
       WHERE state IN ('assigned', 'running') AND owner = ?2`,
    ),
    oldestDead: p(
      "SELECT seq, id, type FROM tasks WHERE state = 'dead_letter' ORDER BY dead_seq LIMIT ?",
    ),
    listDead: p(
      `SELECT t.*, b.payload FROM tasks t LEFT JOIN bodies b ON b.seq = t.seq
       WHERE t.state = 'dead_letter' AND t.dead_seq > ?4 ${DEAD_FILTER}
       ORDER BY t.dead_seq LIMIT ?5`,
    ),
    selectDead: p(
      `SELECT t.seq FROM tasks t WHERE t.state = 'dead_letter' ${DEAD_FILTER}
       ORDER BY t.dead_seq`,
    ),
    replay: p(
      `UPDATE tasks SET state = 'queued', attempts = 0, ord = ?, updated_at = ?,
         dead_lettered_at = NULL, dead_seq = NULL WHERE seq = ?`,
    ),
    task: p("SELECT * FROM tasks WHERE id = ?"),
    heartbeat: p(
      `INSERT INTO owners (owner, pid, lease_until) VALUES (?, ?, ?)
       ON CONFLICT (owner) DO UPDATE SET lease_until = excluded.lease_until`,
    ),
    otherOwners: p("SELECT * FROM owners WHERE owner <> ?"),
    owners: p("SELECT owner FROM owners"),
    deleteOwner: p("DELETE FROM owners WHERE owner = ?"),
    recover: p(
      `UPDATE tasks SET state = 'queued', updated_at = ?, owner = NULL, token = NULL
       WHERE state IN ('assigned', 'running')
         AND (owner IS NULL OR owner NOT IN (SELECT owner FROM owners))`,
    ),
    pruneOld: p("DELETE FROM tasks WHERE state = 'completed' AND completed_at <= ?"),
    pruneOldest: p(
      `DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks WHERE state = 'completed'
         ORDER BY completed_at LIMIT ?)`,
    ),
  };
}

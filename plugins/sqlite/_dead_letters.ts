/**
 * The SQLite broker's dead letters: the cap on how many are kept, and
 * listing, replaying and purging them.
 *
 * @module
 */
import { brokerClosedError, type DeadLetterPage, type DeadLetterSelector } from "../../core/mod.ts";
import { deadLetterFromRow, decodeCursor, encodeCursor } from "./_codec.ts";
import type { BrokerState } from "./_state.ts";
import { filterArgs } from "./_statements.ts";

/** After the first dropped dead letter, log one line per this many drops. */
const DROP_LOG_EVERY = 1000;

/** Drops the oldest dead letters beyond `max_dead_letters`, in a transaction. */
export function capDeadLetters(st: BrokerState): void {
  const count = Number(st.s.count.get("dead_letter")?.n ?? 0);
  const excess = count - st.o.max_dead_letters;
  if (excess <= 0) return;
  for (const row of st.s.oldestDead.all(excess)) {
    st.s.deleteBody.run(row.seq as number);
    st.s.deleteTask.run(row.seq as number);
    st.deadDropped++;
    if (st.deadDropped === 1 || st.deadDropped % DROP_LOG_EVERY === 0) {
      st.log.warn("Dead-letter queue is full: dropped the oldest dead letter", {
        broker: st.name,
        task_id: row.id,
        task_type: row.type,
        max_dead_letters: st.o.max_dead_letters,
        dropped_total: st.deadDropped,
      });
    }
  }
}

/** A page of dead letters, oldest first (a read: no transaction). */
export function listDeadLetters(
  st: BrokerState,
  selector: DeadLetterSelector & { limit?: number; cursor?: string },
): DeadLetterPage {
  const { limit = 100, cursor } = selector;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`Dead-letter page limit must be a positive integer, got "${limit}"`);
  }
  const after = cursor === undefined ? 0 : decodeCursor(cursor);
  if (after === undefined) throw new RangeError(`Invalid dead-letter cursor "${cursor}"`);
  if (st.closed) throw brokerClosedError(st.name);
  const rows = st.s.listDead.all(...filterArgs(selector), after, limit + 1);
  const items = rows.slice(0, limit).map(deadLetterFromRow);
  const page: DeadLetterPage = { items };
  if (rows.length > limit) page.cursor = encodeCursor(Number(rows[limit - 1]!.dead_seq));
  return page;
}

/** Moves the selected dead letters back to their queues, in a transaction; returns how many. */
export function replayDeadLetters(st: BrokerState, selector: DeadLetterSelector): number {
  const now = st.clock.now();
  const rows = st.s.selectDead.all(...filterArgs(selector));
  for (const row of rows) st.s.replay.run(st.nextOrd(), now, row.seq as number);
  if (rows.length > 0) st.woke = true;
  return rows.length;
}

/** Deletes the selected dead letters, in a transaction; returns how many. */
export function purgeDeadLetters(st: BrokerState, selector: DeadLetterSelector): number {
  const rows = st.s.selectDead.all(...filterArgs(selector));
  for (const row of rows) {
    st.s.deleteBody.run(row.seq as number);
    st.s.deleteTask.run(row.seq as number);
  }
  return rows.length;
}

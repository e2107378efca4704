/**
 * Reserving from the SQLite broker: the weighted round-robin over the
 * priority queues, delayed retries that fell due, and the deliveries built
 * from rows (or from the payloads cached at enqueue).
 *
 * @module
 */
import { type Delivery, type Priority, PRIORITY_SCHEDULE } from "../../core/mod.ts";
import { decodeBody, PRIORITY_NUMBER, type Row, taskFromRow } from "./_codec.ts";
import { Receipt } from "./_settle.ts";
import type { BrokerState } from "./_state.ts";

export { PRIORITY_SCHEDULE };

/** Most due retries moved back to their queues per transaction. */
const PROMOTE_PER_FLUSH = 500;

/** Whether a task is queued or a delayed one due (as far as the last commit shows). */
export function mayHaveWork(st: BrokerState): boolean {
  try {
    if (Number(st.s.count.get("queued")?.n ?? 0) > 0) return true;
    const due = st.s.earliestDue.get()?.due;
    st.nextDue = typeof due === "number" ? due : undefined;
    return st.nextDue !== undefined && st.nextDue <= st.clock.now();
  } catch {
    return true; // let the transaction report it
  }
}

/**
 * Assigns up to `max` tasks to `consumer`, in a transaction; `owner` is the
 * broker. Returns what makes the deliveries, to call once the transaction
 * has committed: decoding the payloads is most of a reservation's work, and
 * inside the transaction it would hold the file's write lock against every
 * other process and thread (two isolates measured half idle each).
 */
export function take(
  st: BrokerState,
  owner: object,
  consumer: string,
  max: number,
): () => Delivery[] {
  if (st.closed) return () => [];
  const now = st.clock.now();
  promoteDue(st, now);
  const s = st.s;
  const queues = (["high", "normal", "low"] as const).map((p) =>
    s.queued.all(PRIORITY_NUMBER[p], max).map((r) => Number(r.seq))
  );
  const [high, normal, low] = queues as [number[], number[], number[]];
  const byPriority: Record<Priority, number[]> = { high, normal, low };
  const at: Record<Priority, number> = { high: 0, normal: 0, low: 0 };
  const chosen: number[] = [];
  outer: while (chosen.length < max) {
    for (let i = 0; i < PRIORITY_SCHEDULE.length; i++) {
      const priority = PRIORITY_SCHEDULE[st.slot]!;
      st.slot = (st.slot + 1) % PRIORITY_SCHEDULE.length;
      const list = byPriority[priority];
      if (at[priority] < list.length) {
        chosen.push(list[at[priority]++]!);
        continue outer;
      }
    }
    break;
  }
  // Every queue seen whole and emptied: the next burst starts with `high`.
  if (
    queues.every((q, i) =>
      q.length < max && at[(["high", "normal", "low"] as const)[i]!] === q.length
    )
  ) {
    st.slot = 0;
  }
  if (chosen.length === 0) {
    const due = s.earliestDue.get()?.due;
    st.nextDue = typeof due === "number" ? due : undefined;
    return () => [];
  }
  st.metaDirty = true;
  const token = ++st.token;
  const list = JSON.stringify(chosen);
  s.assign.run(consumer, st.owner, token, now, list);
  const rows = new Map<number, Row>();
  for (const row of s.rowsOf.all(list)) rows.set(Number(row.seq), row);
  const uncached: number[] = [];
  for (const seq of chosen) {
    const cached = st.cache.get(seq);
    const row = rows.get(seq)!;
    // The seq of a task completed elsewhere can come back for another task.
    if (!cached || cached.id !== row.id || cached.created_at !== row.created_at) {
      uncached.push(seq);
    }
  }
  const bodies = new Map<number, unknown>();
  if (uncached.length > 0) {
    for (const row of s.payloadsOf.all(JSON.stringify(uncached))) {
      bodies.set(Number(row.seq), row.payload);
    }
  }
  const cached = new Map<number, unknown>();
  for (const seq of chosen) if (!bodies.has(seq)) cached.set(seq, st.cache.get(seq)!.payload);
  st.took = true;
  return () =>
    chosen.map((seq) => {
      const row = rows.get(seq)!;
      const receipt = new Receipt(owner, seq, token);
      if (!bodies.has(seq)) return { task: taskFromRow(row, cached.get(seq)), receipt };
      const body = decodeBody(bodies.get(seq));
      const delivery: Delivery = { task: taskFromRow(row, body.payload), receipt };
      if (body.invalid !== undefined) delivery.invalid = body.invalid;
      return delivery;
    });
}

/** Moves delayed tasks that are due to the back of their queues. */
function promoteDue(st: BrokerState, now: number): void {
  if (st.nextDue !== undefined && st.nextDue > now) return;
  const due = st.s.dueNow.all(now, PROMOTE_PER_FLUSH);
  for (const row of due) st.s.promote.run(st.nextOrd(), now, row.seq as number);
  if (due.length > 0) st.woke = true;
  st.nextDue = undefined;
}

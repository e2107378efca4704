/**
 * Settling on the SQLite broker: the broker's receipts and the rows each
 * settlement writes. A settlement whose lease was lost (the task was
 * requeued meanwhile) changes nothing and is reported back.
 *
 * @module
 */
import type { Settlement, TaskState } from "../../core/mod.ts";
import { encodePayload, PRIORITY_NUMBER } from "./_codec.ts";
import { capDeadLetters } from "./_dead_letters.ts";
import type { BrokerState } from "./_state.ts";

/** The broker's handle in a {@link Delivery}. */
export class Receipt {
  settled = false;
  /** In a write not yet committed: a second settle is refused. */
  pending = false;
  started = false;
  constructor(
    /** The broker that handed it out. */
    readonly owner: object,
    readonly seq: number,
    /** Which reservation: a settle after the lease was lost (and the task requeued) is ignored. */
    readonly token: number,
  ) {}
}

/** The state of the task a receipt was handed out for. */
export function receiptState(receipt: Receipt): TaskState {
  return receipt.started ? "running" : "assigned";
}

/** Marks the deliveries of `receipts` started, in a transaction. */
export function writeStarts(st: BrokerState, receipts: readonly Receipt[]): void {
  const now = st.clock.now();
  for (const r of receipts) st.s.start.run(now, r.seq, r.token);
}

/** Writes settlements, in a transaction; returns the ids of tasks whose lease was lost meanwhile. */
export function writeSettlements(
  st: BrokerState,
  settlements: readonly Settlement[],
  receipts: readonly Receipt[],
): string[] {
  const now = st.clock.now();
  const s = st.s;
  const lost: string[] = [];
  let dead = 0;
  for (let i = 0; i < settlements.length; i++) {
    const settlement = settlements[i]!;
    const r = receipts[i]!;
    const task = settlement.delivery.task;
    const ran = r.started && settlement.outcome !== "released";
    const attempts = task.attempts + (ran ? 1 : 0);
    if (settlement.outcome === "completed" || settlement.outcome === "dead_letter") {
      st.cache.delete(r.seq);
    }
    let changed: number | bigint;
    switch (settlement.outcome) {
      case "completed":
        changed = st.o.retention > 0 && st.o.max_retained > 0
          ? s.complete.run(attempts, now, now, r.seq, r.token).changes
          : s.forget.run(r.seq, r.token).changes;
        if (changed) s.deleteBody.run(r.seq);
        break;
      case "retry":
        changed = s.retry.run(
          attempts,
          now,
          now + settlement.delay,
          JSON.stringify(settlement.error),
          r.seq,
          r.token,
        ).changes;
        if (changed && (st.nextDue === undefined || now + settlement.delay < st.nextDue)) {
          st.nextDue = now + settlement.delay;
        }
        break;
      case "dead_letter":
        st.metaDirty = true;
        changed = s.dead.run(
          attempts,
          now,
          now,
          ++st.deadSeq,
          JSON.stringify(settlement.error),
          r.seq,
          r.token,
        ).changes;
        if (changed && settlement.task) {
          // Quarantine: only the failed samples stay, under the same id.
          const kept = settlement.task;
          s.replaceTask.run(
            kept.type,
            kept.pipeline ?? null,
            kept.checked === true ? 1 : 0,
            PRIORITY_NUMBER[kept.priority ?? "normal"] ?? 1,
            r.seq,
          );
          s.replaceBody.run(encodePayload(kept), r.seq);
        }
        if (changed) dead++;
        break;
      case "released":
        changed = s.release.run(now, r.seq, r.token).changes;
        if (changed) st.woke = true;
        break;
    }
    if (!changed) lost.push(task.id);
  }
  if (st.nextDue !== undefined) st.woke = true; // a zero delay is due at once
  if (dead > 0) capDeadLetters(st);
  return lost;
}

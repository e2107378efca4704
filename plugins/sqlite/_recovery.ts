/**
 * Leases and recovery on the SQLite broker: this process renews its lease,
 * requeues the tasks of processes that are gone (lease expired, or a dead
 * pid on this machine), forgets old completed records, and on close gives
 * back what it still holds.
 *
 * @module
 */
import type { BrokerState } from "./_state.ts";
import type { Op } from "./_write_queue.ts";

/** The write of one maintenance round; logs what it requeued. */
export function maintenanceOp(st: BrokerState): Op {
  return {
    enqueue: false,
    run: () => recover(st),
    resolve: (count) => {
      if ((count as number) > 0) {
        st.log.warn("Requeued tasks of consumers whose process is gone or lease expired", {
          broker: st.name,
          file: st.file,
          tasks: count,
        });
      }
    },
    reject: () => {}, // logged by the write queue; the next round tries again
  };
}

/** The last write of a closing broker: its tasks back to the queue, its lease gone. */
export function releaseOp(st: BrokerState): Op {
  return {
    enqueue: false,
    run: () => {
      const now = st.clock.now();
      const released = Number(st.s.releaseOwner.run(now, st.owner).changes);
      st.s.deleteOwner.run(st.owner);
      return released;
    },
    resolve: () => {},
    reject: () => {},
  };
}

/** One maintenance round, in a transaction; returns how many tasks it requeued. */
function recover(st: BrokerState): number {
  const now = st.clock.now();
  const s = st.s;
  s.heartbeat.run(st.owner, Deno.pid, now + st.o.lease);
  for (const row of s.otherOwners.all(st.owner)) {
    const owner = String(row.owner);
    if (Number(row.lease_until) < now || st.locks.isGone(owner)) s.deleteOwner.run(owner);
  }
  const recovered = Number(s.recover.run(now).changes);
  if (recovered > 0) st.woke = true;
  s.pruneOld.run(now - st.o.retention);
  const excess = Number(s.count.get("completed")?.n ?? 0) - st.o.max_retained;
  if (excess > 0) s.pruneOldest.run(excess);
  return recovered;
}

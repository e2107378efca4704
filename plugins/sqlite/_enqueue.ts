/**
 * Enqueueing on the SQLite broker: tasks are checked and encoded in the
 * caller's turn, and inserted in the transaction while the queue has room.
 *
 * @module
 */
import type { SQLInputValue } from "node:sqlite";
import type { Task } from "../../core/mod.ts";
import { encodePayload, PRIORITY_NUMBER } from "./_codec.ts";
import type { BrokerState } from "./_state.ts";
import { errcode, WAIT } from "./_write_queue.ts";

/** The stored bodies of `tasks`; throws for an unknown priority. */
export function encodeTasks(tasks: readonly Task[]): string[] {
  for (const task of tasks) {
    const priority = task.priority ?? "normal";
    if (!Object.hasOwn(PRIORITY_NUMBER, priority)) {
      throw new Error(`Task "${task.id}" has an unknown priority "${String(priority)}"`);
    }
  }
  return tasks.map(encodePayload);
}

/**
 * Inserts `tasks`, in a transaction; {@link WAIT} when the queue has no
 * room for them yet.
 */
export function insertTasks(
  st: BrokerState,
  tasks: readonly Task[],
  bodies: readonly string[],
): void | typeof WAIT {
  const s = st.s;
  const queued = Number(s.count.get("queued")?.n ?? 0);
  if (queued > 0 && queued + tasks.length > st.o.capacity) return WAIT;
  const now = st.clock.now();
  const fresh: Array<[number, Task]> = [];
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i]!;
    const args: SQLInputValue[] = [
      task.id,
      task.type,
      PRIORITY_NUMBER[task.priority ?? "normal"],
      st.nextOrd(),
      task.attempts,
      task.created_at,
      now,
      task.pipeline ?? null,
      task.checked === true ? 1 : 0,
    ];
    let seq: number;
    try {
      seq = Number(s.insertTask.run(...args).lastInsertRowid);
    } catch (error) {
      if (errcode(error) !== 19) throw error; // not a constraint: the id is taken
      const held = s.stateOf.get(task.id);
      if (held?.state !== "completed") {
        throw new Error(`Task "${task.id}" is already in broker "${st.name}"`);
      }
      // A completed id may start a new life.
      s.deleteTask.run(held.seq as number);
      seq = Number(s.insertTask.run(...args).lastInsertRowid);
    }
    s.insertBody.run(seq, bodies[i]!);
    fresh.push([seq, task]);
  }
  st.fresh.push(...fresh); // only once every insert of the call succeeded
  st.woke = true;
}

/**
 * The memory broker's priority queues, taken from by weighted round-robin.
 *
 * @module
 */
import { type Priority, PRIORITY_SCHEDULE, type Task, type TaskRecord } from "../../core/mod.ts";
import { Deque } from "./_collections.ts";

export { PRIORITY_SCHEDULE };

/** One queue per priority, taken from by {@link PRIORITY_SCHEDULE}. */
export class PriorityQueues<E extends { record: { priority: Priority } }> {
  readonly #queues: Record<Priority, Deque<E>> = {
    high: new Deque(),
    normal: new Deque(),
    low: new Deque(),
  };
  #length = 0;
  #slot = 0;

  /** Entries in all queues. */
  get length(): number {
    return this.#length;
  }

  /** Whether `priority` has a queue. */
  has(priority: string): boolean {
    return Object.hasOwn(this.#queues, priority);
  }

  /** Adds an entry to its priority's queue, at the back or the front. */
  push(entry: E, front: boolean): void {
    const queue = this.#queues[entry.record.priority];
    if (front) queue.unshift(entry);
    else queue.push(entry);
    this.#length++;
  }

  /** Takes the next entry by weighted round-robin. */
  next(): E | undefined {
    if (this.#length === 0) return undefined;
    for (let i = 0; i < PRIORITY_SCHEDULE.length; i++) {
      const priority = PRIORITY_SCHEDULE[this.#slot]!;
      this.#slot = (this.#slot + 1) % PRIORITY_SCHEDULE.length;
      const entry = this.#queues[priority].shift();
      if (entry) {
        // An empty broker starts the next burst with `high`.
        if (--this.#length === 0) this.#slot = 0;
        return entry;
      }
    }
    return undefined;
  }
}

/** One task the broker knows about, from enqueue until completed or purged. */
export interface Entry {
  /** The broker's copy of the task; `attempts` kept in step with the record. */
  task: Task;
  record: TaskRecord;
  /** When a delayed entry becomes due (valid while in the delayed heap). */
  due: number;
  /** Tie-breaker for equal due times. */
  order: number;
}

/** An enqueue waiting for room (only with `capacity`). */
export interface Producer {
  entries: Entry[];
  next: number;
  resolve(): void;
  reject(error: Error): void;
}

/** Reserves waiting for work, oldest first. */
export class Waiters {
  readonly #wakes = new Set<() => void>();

  /** How many reserves wait. */
  get size(): number {
    return this.#wakes.size;
  }

  /** Resolves when woken or when `signal` aborts. */
  wait(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#wakes.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      this.#wakes.add(wake);
      signal.addEventListener("abort", wake, { once: true });
    });
  }

  /** Wakes up to `count` waiting reserves, oldest first. */
  wake(count: number): void {
    let budget = count;
    for (const wake of [...this.#wakes]) {
      if (budget-- <= 0) break;
      wake();
    }
  }
}

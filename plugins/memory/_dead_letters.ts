/**
 * The memory broker's dead-letter store: insertion-ordered (oldest first),
 * capped, with opaque cursors that survive deletions between pages.
 *
 * @module
 */
import {
  type DeadLetter,
  type DeadLetterPage,
  type DeadLetterSelector,
  decodeDeadLetterCursor,
  encodeDeadLetterCursor,
  type Logger,
  type Task,
  type TaskError,
  type TaskRecord,
} from "../../core/mod.ts";

const DEFAULT_PAGE = 100;
/** After the first dropped dead letter, log one line per this many drops. */
const DROP_LOG_EVERY = 1000;
const CURSOR_PREFIX = "memory-dlq:";

/** What the store keeps per task: the broker's own entry. */
export interface DeadEntry {
  task: Task;
  record: TaskRecord;
}

interface Slot<E> {
  /** Position in dead-letter order; cursors point at it. */
  seq: number;
  entry: E;
  error: TaskError;
  at: number;
}

/** Dead letters in the order they died, at most `max` of them. */
export class DeadLetterStore<E extends DeadEntry> {
  // A Map iterates in insertion order and deletes in O(1).
  readonly #slots = new Map<string, Slot<E>>();
  #seq = 0;
  #dropped = 0;

  /** With `owner`, drops for room are logged: the first, then one line per 1000. */
  constructor(readonly max: number, readonly owner?: { broker: string; logger: Logger }) {}

  get size(): number {
    return this.#slots.size;
  }

  /** Adds a dead letter; returns the oldest entry when it had to be dropped for room. */
  add(entry: E, error: TaskError, at: number): E | undefined {
    let dropped: E | undefined;
    if (this.#slots.size >= this.max) {
      const oldest = this.#slots.values().next().value;
      if (oldest) {
        this.#slots.delete(oldest.entry.task.id);
        dropped = oldest.entry;
        this.#logDrop(dropped);
      }
    }
    this.#slots.set(entry.task.id, { seq: this.#seq++, entry, error: { ...error }, at });
    return dropped;
  }

  #logDrop(dropped: E): void {
    this.#dropped++;
    if (!this.owner || (this.#dropped !== 1 && this.#dropped % DROP_LOG_EVERY !== 0)) return;
    this.owner.logger.warn("Dead-letter queue is full: dropped the oldest dead letter", {
      broker: this.owner.broker,
      task_id: dropped.task.id,
      task_type: dropped.task.type,
      max_dead_letters: this.max,
      dropped_total: this.#dropped,
    });
  }

  /** Removes and returns the selected entries, oldest first. */
  take(selector: DeadLetterSelector): E[] {
    const matches = matching(selector);
    const out: E[] = [];
    for (const slot of this.#slots.values()) {
      if (matches(slot.entry.task)) out.push(slot.entry);
    }
    for (const entry of out) this.#slots.delete(entry.task.id);
    return out;
  }

  /** A page of copies, oldest first. Throws on a malformed cursor or limit. */
  list(selector: DeadLetterSelector & { limit?: number; cursor?: string }): DeadLetterPage {
    const { limit = DEFAULT_PAGE, cursor } = selector;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`Dead-letter page limit must be a positive integer, got "${limit}"`);
    }
    const after = cursor === undefined ? -1 : decodeCursor(cursor);
    if (after === undefined) throw new RangeError(`Invalid dead-letter cursor "${cursor}"`);
    const matches = matching(selector);
    const items: DeadLetter[] = [];
    let last = after;
    for (const slot of this.#slots.values()) {
      if (slot.seq <= after || !matches(slot.entry.task)) continue;
      if (items.length === limit) return { items, cursor: encodeCursor(last) };
      items.push({
        task: { ...slot.entry.task },
        error: { ...slot.error },
        attempts: slot.entry.record.attempts,
        dead_lettered_at: slot.at,
      });
      last = slot.seq;
    }
    return { items };
  }
}

/** All given filters must match; no filter matches everything; `ids: []` matches nothing. */
function matching(selector: DeadLetterSelector): (task: Task) => boolean {
  const ids = selector.ids ? new Set(selector.ids) : undefined;
  const { type, pipeline } = selector;
  return (task) =>
    (ids === undefined || ids.has(task.id)) &&
    (type === undefined || task.type === type) &&
    (pipeline === undefined || task.pipeline === pipeline);
}

const encodeCursor = (seq: number) => encodeDeadLetterCursor(CURSOR_PREFIX, seq);
const decodeCursor = (cursor: string) => decodeDeadLetterCursor(CURSOR_PREFIX, cursor);

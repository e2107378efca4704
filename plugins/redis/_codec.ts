/**
 * Pure parts of the Redis broker: key names, the wire format of tasks and
 * dead letters, and task records read back from hashes. No I/O here.
 *
 * @module
 */
import { type Buffer, isUtf8 } from "node:buffer";
import {
  type DeadLetter,
  type DeadLetterSelector,
  isRecord,
  PRIORITIES,
  type Priority,
  type Task,
  TASK_STATES,
  type TaskError,
  type TaskRecord,
  type TaskState,
} from "../../core/mod.ts";

/** Queue index per priority, as the Lua scripts number them (1 high, 2 normal, 3 low). */
export const QUEUE_INDEX: Readonly<Record<Priority, 1 | 2 | 3>> = { high: 1, normal: 2, low: 3 };

/** Every key the broker uses, for one prefix. */
export interface RedisKeys {
  prefix: string;
  /** Queues, in the order the scripts take them: high, normal, low. */
  queues: readonly [string, string, string];
  delayed: string;
  /** Pub/sub channel (not a key): a message wakes idle consumers to look at high and low. */
  wake: string;
  dlq: string;
  dlqSeq: string;
  consumers: string;
  /** `task:{id}` split around `{id}`. */
  taskPrefix: string;
  taskSuffix: string;
  task(id: string): string;
  processing(consumer: string): string;
  lease(consumer: string): string;
}

/**
 * The key layout of the original design: `{prefix}:tasks` is the queue of
 * normal priority (where foreign producers push), `{prefix}:tasks:high` and
 * `{prefix}:tasks:low` the others, `{prefix}:dlq` the dead letters and
 * `task:{id}` (the `taskKey` pattern) each task's record.
 */
export function redisKeys(prefix: string, taskKey: string): RedisKeys {
  const at = taskKey.indexOf("{id}");
  if (at < 0 || taskKey.indexOf("{id}", at + 1) >= 0) {
    throw new Error(`Task key pattern "${taskKey}" must contain "{id}" exactly once`);
  }
  const taskPrefix = taskKey.slice(0, at);
  const taskSuffix = taskKey.slice(at + 4);
  return {
    prefix,
    queues: [`${prefix}:tasks:high`, `${prefix}:tasks`, `${prefix}:tasks:low`],
    delayed: `${prefix}:delayed`,
    wake: `${prefix}:wake`,
    dlq: `${prefix}:dlq`,
    dlqSeq: `${prefix}:dlq:seq`,
    consumers: `${prefix}:consumers`,
    taskPrefix,
    taskSuffix,
    task: (id) => `${taskPrefix}${id}${taskSuffix}`,
    processing: (consumer) => `${prefix}:processing:${consumer}`,
    lease: (consumer) => `${prefix}:lease:${consumer}`,
  };
}

/**
 * A task's JSON on the wire: id first and type second, which the scripts
 * read without decoding the payload. `payload` is written as given.
 */
export function encodeTask(task: Task, payload: unknown = task.payload): string {
  const wire: Record<string, unknown> = {
    id: task.id,
    type: task.type,
    priority: task.priority ?? "normal",
    attempts: task.attempts,
    created_at: task.created_at,
  };
  if (task.pipeline !== undefined) wire.pipeline = task.pipeline;
  if (task.checked === true) wire.checked = true;
  wire.payload = payload;
  return JSON.stringify(wire);
}

/** A queue element decoded: the task, or why it is not one. */
export interface DecodedTask {
  task: Task;
  /** Set when the element is not a usable task (the runtime dead-letters it). */
  invalid?: string;
  /**
   * Set when a foreign producer gave no `created_at`: `task.created_at` is
   * the time of decoding until the broker replaces it with the time its
   * record was started, which stays the same on every redelivery.
   */
  undated?: true;
}

/**
 * Decodes a queue element. Never throws: malformed elements (bad JSON, no
 * id or type) come back with `invalid` set and a stand-in task, so the
 * runtime dead-letters them and the worker carries on.
 */
export function decodeTask(raw: string, now: number): DecodedTask {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    return malformed(raw, now, `Task is not valid JSON: ${(error as Error).message}`);
  }
  if (!isRecord(value)) return malformed(raw, now, "Task must be a JSON object");
  const { id, type, attempts, created_at, priority, pipeline, checked } = value;
  if (typeof id !== "string" || id === "") {
    return malformed(raw, now, 'Task has no "id" (a non-empty string)');
  }
  const task: Task = {
    id,
    type: typeof type === "string" ? type : "",
    payload: value.payload,
    attempts: typeof attempts === "number" && Number.isInteger(attempts) && attempts >= 0
      ? attempts
      : 0,
    created_at: typeof created_at === "number" ? created_at : now,
  };
  const dated = typeof created_at === "number";
  if (typeof priority === "string" && (PRIORITIES as readonly string[]).includes(priority)) {
    task.priority = priority as Priority;
  }
  if (typeof pipeline === "string") task.pipeline = pipeline;
  if (checked === true) task.checked = true;
  if (typeof type !== "string" || type === "") {
    return { task, invalid: `Task "${id}" has no "type" (a non-empty string)` };
  }
  if (!("payload" in value)) return { task, invalid: `Task "${id}" has no "payload"` };
  return dated ? { task } : { task, undated: true };
}

/** U+FFFD: what the bytes of an element that are not UTF-8 decode to. */
const REPLACEMENT = "\uFFFD";

/** A queue element read as bytes, decoded. */
export interface DecodedElement extends DecodedTask {
  /** The element as text (bytes that are not UTF-8 appear as U+FFFD). */
  raw: string;
  /** The exact bytes, kept only when they are not UTF-8 (so `raw` is not them). */
  bytes?: Buffer;
}

/**
 * Decodes a queue element read as bytes. An element that is not UTF-8
 * cannot be a task (JSON is UTF-8): it comes back `invalid`, with its exact
 * bytes so that it can be dead-lettered unchanged, and keeps the id it
 * seems to have (if any) so that its record is settled too.
 */
export function decodeElement(bytes: Buffer, now: number): DecodedElement {
  const raw = bytes.toString();
  // Only text with a replacement character can come from bad bytes: the
  // full check runs on those alone, keeping the common path a scan.
  if (!raw.includes(REPLACEMENT) || isUtf8(bytes)) return { raw, ...decodeTask(raw, now) };
  const { task } = decodeTask(raw, now);
  const invalid = `Task is not valid UTF-8 (${bytes.byteLength} bytes, kept base64-encoded)`;
  // An id read through replacement characters is not the id Redis holds.
  if (task.id === "" || task.id.includes(REPLACEMENT)) {
    return {
      raw,
      bytes,
      task: { id: "", type: "", payload: null, attempts: 0, created_at: now },
      invalid,
    };
  }
  return { raw, bytes, task: { ...task, payload: null }, invalid };
}

function malformed(raw: string, now: number, reason: string): DecodedTask {
  return {
    task: { id: "", type: "", payload: raw, attempts: 0, created_at: now },
    invalid: reason,
  };
}

/** A dead letter as stored in `{prefix}:dlq` (the script adds `seq`). */
export interface StoredDeadLetter extends DeadLetter {
  /** Order of dead-lettering; the listing cursor. */
  seq: number;
}

/** Encodes a dead letter; the settle script prepends its `seq`. */
export function encodeDeadLetter(letter: DeadLetter): string {
  return JSON.stringify(letter);
}

/** Decodes a stored dead letter, or `undefined` for an element the broker did not write. */
export function decodeDeadLetter(raw: string): StoredDeadLetter | undefined {
  try {
    const value = JSON.parse(raw);
    if (!isRecord(value) || typeof value.seq !== "number" || !isRecord(value.task)) {
      return undefined;
    }
    return value as unknown as StoredDeadLetter;
  } catch {
    return undefined;
  }
}

/** Whether a dead letter matches a selector (every given filter must match). */
export function matchesSelector(letter: DeadLetter, selector: DeadLetterSelector): boolean {
  if (selector.ids && !selector.ids.includes(letter.task.id)) return false;
  if (selector.type !== undefined && letter.task.type !== selector.type) return false;
  if (selector.pipeline !== undefined && letter.task.pipeline !== selector.pipeline) return false;
  return true;
}

function num(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/** A task record from its hash (`HGETALL`), or `undefined` when there is none. */
export function recordFromHash(
  id: string,
  hash: Record<string, string>,
): TaskRecord | undefined {
  const state = hash.state as TaskState | undefined;
  if (state === undefined || !TASK_STATES.includes(state)) return undefined;
  const priority = (PRIORITIES as readonly string[]).includes(hash.priority ?? "")
    ? hash.priority as Priority
    : "normal";
  const created = num(hash.created_at) ?? 0;
  const record: TaskRecord = {
    id,
    type: hash.type ?? "",
    state,
    attempts: num(hash.attempts) ?? 0,
    priority,
    created_at: created,
    updated_at: num(hash.updated_at) ?? created,
  };
  if (hash.pipeline !== undefined) record.pipeline = hash.pipeline;
  if (hash.worker !== undefined) record.worker = hash.worker;
  const due = num(hash.due_at);
  if (due !== undefined && state === "failed") record.due_at = due;
  if (hash.last_error) {
    try {
      record.last_error = JSON.parse(hash.last_error) as TaskError;
    } catch { /* a foreign writer's text; leave it out */ }
  }
  const completed = num(hash.completed_at);
  if (completed !== undefined) record.completed_at = completed;
  const dead = num(hash.dead_lettered_at);
  if (dead !== undefined && state === "dead_letter") record.dead_lettered_at = dead;
  return record;
}

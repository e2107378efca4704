/**
 * Pure parts of the SQLite broker: the stored form of payloads, rows read
 * back as tasks, records and dead letters, and dead-letter cursors.
 *
 * @module
 */
import {
  compactPayload,
  type DeadLetter,
  decodeDeadLetterCursor,
  encodeDeadLetterCursor,
  PermanentError,
  type Priority,
  type Task,
  type TaskError,
  type TaskRecord,
  type TaskState,
} from "../../core/mod.ts";

/** Stored priority numbers: 0 high, 1 normal, 2 low (so `ORDER BY priority` is by importance). */
export const PRIORITY_NUMBER: Readonly<Record<Priority, number>> = { high: 0, normal: 1, low: 2 };
const PRIORITY_NAME: readonly Priority[] = ["high", "normal", "low"];

/** The payload's stored JSON text; throws {@link PermanentError} when it has none. */
export function encodePayload(task: Task): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(compactPayload(task.payload, task.checked === true));
  } catch (error) {
    throw new PermanentError(
      `Task "${task.id}" cannot be stored: its payload is not JSON (${(error as Error).message})`,
      { cause: error },
    );
  }
  return text ?? "null";
}

/** A stored payload decoded, or why it cannot be. */
export interface DecodedBody {
  payload: unknown;
  /** Set when the stored text is not JSON (the runtime dead-letters the task). */
  invalid?: string;
  /** The stored text when it is not JSON. */
  raw?: string;
  /** The stored bytes, base64, when they are a blob that is not UTF-8. */
  rawBase64?: string;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes a stored payload. Never throws: a row some other writer changed
 * (text that is not JSON, bytes that are not UTF-8) comes back `invalid`.
 */
export function decodeBody(body: unknown): DecodedBody {
  let text: string;
  if (typeof body === "string") text = body;
  else if (body instanceof Uint8Array) {
    try {
      text = strictUtf8.decode(body);
    } catch {
      const rawBase64 = btoa(String.fromCharCode(...body));
      return {
        payload: null,
        rawBase64,
        invalid: `Task payload is not valid UTF-8 (${body.byteLength} bytes, kept base64-encoded)`,
      };
    }
  } else if (body === null || body === undefined) {
    return { payload: null, raw: "", invalid: "Task payload is missing" };
  } else text = String(body);
  try {
    return { payload: JSON.parse(text) };
  } catch (error) {
    return {
      payload: text,
      raw: text,
      invalid: `Task payload is not valid JSON: ${(error as Error).message}`,
    };
  }
}

/** A `tasks` row as read (node:sqlite gives numbers, strings and null). */
export type Row = Record<string, unknown>;

function num(value: unknown): number | undefined {
  return typeof value === "number" ? value : typeof value === "bigint" ? Number(value) : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** The priority of a stored number (unknown numbers read as `normal`). */
export function priorityName(n: unknown): Priority {
  return PRIORITY_NAME[num(n) ?? 1] ?? "normal";
}

/** A task from its row and decoded payload. */
export function taskFromRow(row: Row, payload: unknown): Task {
  const task: Task = {
    id: String(row.id),
    type: String(row.type),
    payload,
    attempts: num(row.attempts) ?? 0,
    created_at: num(row.created_at) ?? 0,
    priority: priorityName(row.priority),
  };
  const pipeline = str(row.pipeline);
  if (pipeline !== undefined) task.pipeline = pipeline;
  if (row.checked === 1) task.checked = true;
  return task;
}

function parseError(text: unknown): TaskError | undefined {
  if (typeof text !== "string") return undefined;
  try {
    return JSON.parse(text) as TaskError;
  } catch {
    return undefined;
  }
}

/** A task record from its row. */
export function recordFromRow(row: Row): TaskRecord {
  const state = String(row.state) as TaskState;
  const record: TaskRecord = {
    id: String(row.id),
    type: String(row.type),
    state,
    attempts: num(row.attempts) ?? 0,
    priority: priorityName(row.priority),
    created_at: num(row.created_at) ?? 0,
    updated_at: num(row.updated_at) ?? 0,
  };
  const pipeline = str(row.pipeline);
  if (pipeline !== undefined) record.pipeline = pipeline;
  const worker = str(row.worker);
  if (worker !== undefined) record.worker = worker;
  const due = num(row.due_at);
  if (due !== undefined && state === "failed") record.due_at = due;
  const error = parseError(row.last_error);
  if (error !== undefined) record.last_error = error;
  const completed = num(row.completed_at);
  if (completed !== undefined && state === "completed") record.completed_at = completed;
  const dead = num(row.dead_lettered_at);
  if (dead !== undefined && state === "dead_letter") record.dead_lettered_at = dead;
  return record;
}

/** A dead letter from its row (with the payload joined as `payload`). */
export function deadLetterFromRow(row: Row): DeadLetter {
  const body = decodeBody(row.payload);
  const letter: DeadLetter = {
    task: taskFromRow(row, body.payload),
    error: parseError(row.last_error) ?? { message: "", name: "Error", permanent: false },
    attempts: num(row.attempts) ?? 0,
    dead_lettered_at: num(row.dead_lettered_at) ?? 0,
  };
  if (body.rawBase64 !== undefined) letter.raw_base64 = body.rawBase64;
  else if (body.raw !== undefined) letter.raw = body.raw;
  return letter;
}

const CURSOR_PREFIX = "sqlite-dlq:";

/** The opaque cursor after dead letter number `seq`. */
export const encodeCursor = (seq: number): string => encodeDeadLetterCursor(CURSOR_PREFIX, seq);

/** The dead-letter number of a cursor, or `undefined` when it is not one of ours. */
export const decodeCursor = (cursor: string): number | undefined =>
  decodeDeadLetterCursor(CURSOR_PREFIX, cursor);

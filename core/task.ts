/**
 * Tasks and their lifecycle. The state machine is a pure table:
 * `created → queued → assigned → running → completed`, or
 * `running → failed → queued` (after backoff), or `running|failed → dead_letter`.
 *
 * @module
 */
import type { Priority } from "./schema.ts";

/** Where a task is in its life. */
export type TaskState =
  | "created"
  | "queued"
  | "assigned"
  | "running"
  | "completed"
  | "failed"
  | "dead_letter";

/** Every state, in lifecycle order. */
export const TASK_STATES: readonly TaskState[] = [
  "created",
  "queued",
  "assigned",
  "running",
  "completed",
  "failed",
  "dead_letter",
];

/** What can happen to a task. */
export type TaskEvent =
  | "enqueue" // producer or retry timer put it in the queue
  | "assign" // a worker took it
  | "start" // the worker began running handlers
  | "complete" // every handler returned
  | "fail" // a handler threw and attempts remain
  | "dead_letter" // permanent error or attempts exhausted
  | "release" // returned to the queue unrun (shutdown, expired lease)
  | "replay"; // taken out of the dead-letter queue again

/** Every event. */
export const TASK_EVENTS: readonly TaskEvent[] = [
  "enqueue",
  "assign",
  "start",
  "complete",
  "fail",
  "dead_letter",
  "release",
  "replay",
];

const TABLE: Readonly<Record<TaskState, Partial<Record<TaskEvent, TaskState>>>> = {
  created: { enqueue: "queued" },
  queued: { assign: "assigned" },
  assigned: { start: "running", release: "queued", dead_letter: "dead_letter" },
  running: {
    complete: "completed",
    fail: "failed",
    dead_letter: "dead_letter",
    release: "queued",
  },
  failed: { enqueue: "queued", dead_letter: "dead_letter" },
  completed: {},
  dead_letter: { replay: "queued" },
};

/** An event that is not allowed in a state. */
export class IllegalTransitionError extends Error {
  override name = "IllegalTransitionError";
  constructor(readonly state: TaskState, readonly event: TaskEvent) {
    super(`Task in state "${state}" cannot take event "${event}"`);
  }
}

/**
 * The state after `event` in `state`; throws {@link IllegalTransitionError}
 * for moves the lifecycle does not allow.
 *
 * @example
 * ```ts
 * import { transition } from "./task.ts";
 * transition("running", "fail"); // "failed"
 * ```
 */
export function transition(state: TaskState, event: TaskEvent): TaskState {
  const next = TABLE[state][event];
  if (next === undefined) throw new IllegalTransitionError(state, event);
  return next;
}

/** Whether `event` is allowed in `state`. */
export function canTransition(state: TaskState, event: TaskEvent): boolean {
  return TABLE[state][event] !== undefined;
}

/** The unit of work on the wire (compatible with the seed format). */
export interface Task {
  id: string;
  type: string;
  payload: unknown;
  /** Attempts already made (0 for a new task). */
  attempts: number;
  /** Milliseconds since the epoch. */
  created_at: number;
  priority?: Priority;
  /** Pipeline that produced it, when known. */
  pipeline?: string;
  /**
   * Set by the hub's gateway: every sample in the payload passed the edge
   * checks and has its identity, so workers decode it without checking again.
   * A foreign producer leaves it out and its samples are checked by the worker.
   */
  checked?: boolean;
}

/** The last error of a task. */
export interface TaskError {
  message: string;
  name: string;
  permanent: boolean;
  /**
   * When only some samples of a task were dead-lettered (quarantined): why
   * each one failed, by its index in the dead-lettered payload.
   */
  samples?: QuarantinedSample[];
}

/** One quarantined sample: its index in the dead-lettered payload and why. */
export interface QuarantinedSample {
  index: number;
  reason: string;
}

/** What a broker remembers about a task, retrievable by id while retained. */
export interface TaskRecord {
  id: string;
  type: string;
  state: TaskState;
  attempts: number;
  priority: Priority;
  created_at: number;
  updated_at: number;
  pipeline?: string;
  /** Consumer (worker) that holds or last held it. */
  worker?: string;
  /** When a failed task becomes due again. */
  due_at?: number;
  last_error?: TaskError;
  completed_at?: number;
  dead_lettered_at?: number;
}

/** Milliseconds since the epoch in a sortable, unique-enough id. */
export function newTaskId(now: number = Date.now()): string {
  return `${now.toString(36)}-${crypto.randomUUID().slice(0, 18)}`;
}

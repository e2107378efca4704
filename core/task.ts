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

/**
 * An event that is not allowed in a state.
 *
 * @example
 * ```ts
 * import { IllegalTransitionError, transition } from "@telemetryhub/telemetryhub";
 * try {
 *   transition("completed", "fail");
 * } catch (error) {
 *   if (error instanceof IllegalTransitionError) console.log(error.state, error.event); // completed fail
 * }
 * ```
 */
export class IllegalTransitionError extends Error {
  /** The class name, which logs and serialized errors keep where `instanceof` cannot be used. */
  override name = "IllegalTransitionError";
  /**
   * The message names the state and the event.
   *
   * @param state The state the task was in.
   * @param event The event that state does not allow.
   */
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

/**
 * Whether `event` is allowed in `state`.
 *
 * @example
 * ```ts
 * import { canTransition } from "@telemetryhub/telemetryhub";
 * canTransition("running", "complete"); // true
 * canTransition("completed", "fail"); // false
 * ```
 */
export function canTransition(state: TaskState, event: TaskEvent): boolean {
  return TABLE[state][event] !== undefined;
}

/** The unit of work on the wire (compatible with the seed format). */
export interface Task {
  /** Unique per broker (see {@link newTaskId}); a batch repeating a held id is refused. */
  id: string;
  /** What work it is: the pipeline whose `task_type` it is handles it. */
  type: string;
  /** The samples, as a {@link SamplePayload} (the runtime decodes it; any JSON from a foreign producer). */
  payload: unknown;
  /** Attempts already made (0 for a new task). */
  attempts: number;
  /** Milliseconds since the epoch. */
  created_at: number;
  /** Which queue it waits in on a broker with priorities; absent means `normal`. */
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
  /** The error's message (see {@link errorMessage}). */
  message: string;
  /** The error's class name, e.g. `PermanentError`; `Error` for a thrown non-error. */
  name: string;
  /**
   * Whether retrying cannot help: a {@link PermanentError}, a message that
   * could not be decoded, quarantined samples.
   */
  permanent: boolean;
  /**
   * When only some samples of a task were dead-lettered (quarantined): why
   * each one failed, by its index in the dead-lettered payload.
   */
  samples?: QuarantinedSample[];
}

/** One quarantined sample: its index in the dead-lettered payload and why. */
export interface QuarantinedSample {
  /** 0-based position of the sample in the dead-lettered task's payload. */
  index: number;
  /** Why it failed: the handler's error message, or the edge's refusal. */
  reason: string;
}

/** What a broker remembers about a task, retrievable by id while retained. */
export interface TaskRecord {
  /** {@link Task.id}. */
  id: string;
  /** {@link Task.type}. */
  type: string;
  /** Where the task is in its lifecycle now. */
  state: TaskState;
  /** Attempts made so far. */
  attempts: number;
  /** {@link Task.priority}, `normal` when the task had none. */
  priority: Priority;
  /** {@link Task.created_at}: milliseconds since the epoch. */
  created_at: number;
  /** When the state last changed: milliseconds since the epoch. */
  updated_at: number;
  /** {@link Task.pipeline}, when the task named one. */
  pipeline?: string;
  /** Consumer (worker) that holds or last held it. */
  worker?: string;
  /** When a failed task becomes due again. */
  due_at?: number;
  /** The error of the last failed attempt; absent while none failed. */
  last_error?: TaskError;
  /** When it completed: milliseconds since the epoch; set in state `completed`. */
  completed_at?: number;
  /** When it was dead-lettered: milliseconds since the epoch; set in state `dead_letter`. */
  dead_lettered_at?: number;
}

/**
 * Milliseconds since the epoch in a sortable, unique-enough id.
 *
 * @example
 * ```ts
 * import { newTaskId } from "@telemetryhub/telemetryhub";
 * const id = newTaskId(); // e.g. "mia8x3k0-86f87a44-bfef-4b50"
 * ```
 */
export function newTaskId(now: number = Date.now()): string {
  return `${now.toString(36)}-${crypto.randomUUID().slice(0, 18)}`;
}

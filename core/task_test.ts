import assert from "node:assert/strict";
import {
  canTransition,
  IllegalTransitionError,
  TASK_EVENTS,
  TASK_STATES,
  type TaskEvent,
  type TaskState,
  transition,
} from "./task.ts";

/**
 * The lifecycle written out in full as the design states it, one legal move
 * per line (state, event, next state); any move absent is illegal.
 */
const LEGAL_MOVES = `
  created      enqueue      queued
  queued       assign       assigned
  assigned     start        running
  assigned     release      queued
  assigned     dead_letter  dead_letter
  running      complete     completed
  running      fail         failed
  running      dead_letter  dead_letter
  running      release      queued
  failed       enqueue      queued
  failed       dead_letter  dead_letter
  dead_letter  replay       queued
`;

const EXPECTED = new Map<string, TaskState>(
  LEGAL_MOVES.trim().split("\n").map((line) => {
    const [state, event, next] = line.trim().split(/\s+/);
    return [`${state} ${event}`, next as TaskState];
  }),
);

Deno.test("TASK_STATES and TASK_EVENTS list every state and event once", () => {
  assert.deepEqual(
    [...TASK_STATES],
    ["created", "queued", "assigned", "running", "completed", "failed", "dead_letter"],
  );
  assert.deepEqual(
    [...TASK_EVENTS],
    ["enqueue", "assign", "start", "complete", "fail", "dead_letter", "release", "replay"],
  );
});

for (const state of TASK_STATES) {
  for (const event of TASK_EVENTS) {
    const next = EXPECTED.get(`${state} ${event}`);
    if (next !== undefined) {
      Deno.test(`transition("${state}", "${event}") is "${next}"`, () => {
        assert.equal(transition(state, event), next);
        assert.equal(canTransition(state, event), true);
      });
    } else {
      Deno.test(`transition("${state}", "${event}") throws IllegalTransitionError`, () => {
        assert.throws(
          () => transition(state, event),
          (error: unknown) =>
            error instanceof IllegalTransitionError &&
            error.state === state &&
            error.event === event &&
            error.message === `Task in state "${state}" cannot take event "${event}"`,
        );
        assert.equal(canTransition(state, event), false);
      });
    }
  }
}

Deno.test("completed is final and every other state can leave", () => {
  const exits = (state: TaskState) => TASK_EVENTS.filter((e) => canTransition(state, e));
  assert.deepEqual(exits("completed"), []);
  for (const state of TASK_STATES.filter((s) => s !== "completed")) {
    assert.ok(exits(state).length > 0, `State "${state}" has no way out`);
  }
});

Deno.test("the happy path and the retry path walk the lifecycle", () => {
  const walk = (events: TaskEvent[]) => events.reduce<TaskState>(transition, "created");
  assert.equal(walk(["enqueue", "assign", "start", "complete"]), "completed");
  assert.equal(
    walk(["enqueue", "assign", "start", "fail", "enqueue", "assign", "start", "complete"]),
    "completed",
  );
  assert.equal(walk(["enqueue", "assign", "start", "dead_letter", "replay"]), "queued");
});

/**
 * The Lua scripts of the Redis broker. Every state change that touches more
 * than one key is one of these scripts, so it is atomic. Each header lists
 * KEYS, ARGV and what the script returns; {@link scriptError} maps the
 * status codes to errors.
 *
 * Task keys (`task:{id}` by default) and per-consumer keys are built inside
 * the scripts from the prefixes passed in ARGV, because their names depend
 * on ids only known inside Redis. On Redis Cluster every key of a queue
 * shard carries the shard's hash tag (see `_shards.ts`), so the keys a
 * script builds are in the slot of the keys it is given.
 *
 * @module
 */

import { DEAD_LETTER_PAGE, DEAD_LETTERS, DEPTH, RECOVER } from "./_lua_upkeep.ts";
import { ENQUEUE, RESERVE, SETTLE, STARTED, UNMOVE } from "./_lua_queue.ts";

export { DEAD_LETTERS, DEPTH, ENQUEUE, RECOVER, RESERVE, SETTLE, STARTED, UNMOVE };

/** Every script by the command name it is registered under. */
export const SCRIPTS = {
  thEnqueue: ENQUEUE,
  thReserve: RESERVE,
  thStarted: STARTED,
  thSettle: SETTLE,
  thRecover: RECOVER,
  thDeadLetters: DEAD_LETTERS,
  thDeadLetterPage: DEAD_LETTER_PAGE,
  thDepth: DEPTH,
  thUnmove: UNMOVE,
} as const;

/** A registered script's name. */
export type ScriptName = keyof typeof SCRIPTS;

/**
 * The error for a script's status code, or `undefined` for success. The
 * one place that knows what the codes mean.
 */
export function scriptError(
  script: ScriptName,
  code: string,
  detail: string | undefined,
  broker: string,
): Error | undefined {
  switch (code) {
    case "ok":
    case "again":
    case "full": // the caller waits for room
      return undefined;
    case "duplicate":
      return new Error(`Task "${detail}" is already in broker "${broker}"`);
    case "stale":
      return new Error(
        `Delivery of task "${detail}" was taken back from its consumer (lease expired)`,
      );
    default:
      return new Error(`Script "${script}" of broker "${broker}" returned unknown code "${code}"`);
  }
}

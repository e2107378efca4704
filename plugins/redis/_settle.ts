/**
 * Settling on Redis: the broker's receipts, what the settle script is told
 * of each settlement, and one script call per consumer key.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { DeadLetter, Logger, Settlement } from "../../core/mod.ts";
import { encodeDeadLetter, encodeTask, QUEUE_INDEX, type RedisKeys } from "./_codec.ts";
import type { RedisBrokerOptions } from "./_config.ts";
import type { RedisConnections, ScriptArg } from "./_connections.ts";
import { scriptError } from "./_scripts.ts";

/** The broker's handle in a {@link Delivery}. */
export class Receipt {
  settled = false;
  started = false;
  /** The element's exact bytes when they are not UTF-8 (`raw` then is not them). */
  bytes: Buffer | undefined;
  /** The task came without `created_at` (see `DecodedTask.undated`). */
  undated = false;
  constructor(
    /** The broker that handed it out. */
    readonly owner: object,
    readonly raw: string,
    /** Consumer key name (consumer and connection epoch) whose processing list holds it. */
    readonly holder: string,
    /** The queue shard it came from (0 on a standalone Redis). */
    readonly shard = 0,
  ) {}
}

/** The settle script's arguments for one settlement. */
export function settleArgs(
  s: Settlement,
  receipt: Receipt,
  now: number,
  /** The settlement's place in its settle() call: orders dead letters of one instant. */
  order = 0,
): ScriptArg[] {
  const task = s.delivery.task;
  const ran = receipt.started && s.outcome !== "released";
  const attempts = task.attempts + (ran ? 1 : 0);
  const priority = QUEUE_INDEX[task.priority ?? "normal"] ?? 2;
  let body = "";
  let due = "";
  let error = "";
  if (s.outcome === "retry") {
    due = String(now + s.delay);
    error = JSON.stringify(s.error);
    body = encodeTask({ ...task, attempts });
  } else if (s.outcome === "dead_letter") {
    error = JSON.stringify(s.error);
    const letter: DeadLetter & { order: number } = {
      // Quarantine: only the failed samples stay, under the same id.
      task: { ...(s.task ?? task), attempts },
      error: s.error,
      attempts,
      dead_lettered_at: now,
      order,
    };
    if (receipt.bytes !== undefined) letter.raw_base64 = receipt.bytes.toString("base64");
    else if (s.delivery.invalid !== undefined) letter.raw = receipt.raw;
    try {
      body = encodeDeadLetter(letter);
    } catch {
      // A payload JSON.parse took but JSON.stringify cannot (nested too deep): keep the
      // element as it came, or settling would fail and the task come back forever.
      letter.task = { ...letter.task, payload: null };
      letter.raw = receipt.raw;
      body = encodeDeadLetter(letter);
    }
  }
  // The script finds a task by id; only an id-less one, or one whose text
  // is not its bytes, is sent back whole.
  const raw = receipt.bytes ?? (task.id === "" ? receipt.raw : "");
  return [s.outcome, raw, task.id, attempts, body, due, error, priority];
}

/** Runs the settle script for the settlements of one consumer key; logs what it reports. */
export async function settleGroup(
  conn: RedisConnections,
  keys: RedisKeys,
  { holder, args, settlements, now, options, log, broker }: {
    holder: string;
    args: ScriptArg[];
    settlements: readonly Settlement[];
    now: number;
    options: Pick<RedisBrokerOptions, "retention" | "max_dead_letters">;
    log: Logger;
    broker: string;
  },
): Promise<void> {
  const status = await conn.script("thSettle", [
    keys.processing(holder),
    ...keys.queues,
    keys.delayed,
    keys.dlq,
    keys.dlqSeq,
  ], [
    now,
    keys.taskPrefix,
    keys.taskSuffix,
    options.retention,
    options.max_dead_letters,
    ...args,
  ]) as unknown[];
  const dropped = Number(status.pop() ?? 0);
  if (dropped > 0) {
    log.warn("Dead-letter queue full; dropped the oldest dead letters", {
      dropped,
      max_dead_letters: options.max_dead_letters,
    });
  }
  (status as string[]).forEach((code, i) => {
    const error = scriptError("thSettle", code, settlements[i]?.delivery.task.id, broker);
    // Not an error for the caller: the task is queued again and will run again.
    if (error) log.debug(error.message);
  });
}

/**
 * Quarantine: when a handler fails for good on some samples of a task, only
 * those are dead-lettered and the others go on.
 *
 * @module
 */
import { outputProblem } from "../chain.ts";
import { errorMessage, isPermanent, PermanentError } from "../errors.ts";
import type { Delivery, HandlerContext } from "../plugin.ts";
import type { Sample } from "../sample.ts";
import type { Task, TaskError } from "../task.ts";
import type { Outcome } from "./_outcome.ts";
import type { ChainLink } from "./_router.ts";

/** A sample (or foreign payload item) to dead-letter alone, and why. */
export interface Quarantined {
  item: unknown;
  reason: string;
}

/**
 * Finds which of `samples` make `link` fail permanently by running it on
 * halves, recursively. Each part runs under its own task id
 * (`<id>/<from>-<to>`), so handlers that remember tasks (aggregate's ledger)
 * take every part once, also when the task is redelivered: the split is the
 * same each time. Transient errors propagate (the task is retried whole).
 */
export async function isolate(
  link: ChainLink,
  samples: readonly Sample[],
  ctx: HandlerContext,
): Promise<{ passed: Sample[]; failed: { index: number; reason: string }[] }> {
  const passed: Sample[] = [];
  const failed: { index: number; reason: string }[] = [];
  const run = async (from: number, to: number): Promise<void> => {
    const part = samples.slice(from, to);
    const task = { ...ctx.task, id: `${ctx.task.id}/${from}-${to}` };
    try {
      const result = await link.instance.handle(part, { ...ctx, task });
      // Held to the same contract as in the chain: a part whose output is invalid fails.
      const problem = result === undefined ? undefined : outputProblem(link.name, result);
      if (problem) throw new PermanentError(problem);
      passed.push(...(result ?? part));
    } catch (error) {
      if (!isPermanent(error) || ctx.signal.aborted) throw error;
      if (to - from === 1) {
        failed.push({ index: from, reason: errorMessage(error) });
        return;
      }
      const mid = (from + to) >>> 1;
      await run(from, mid);
      await run(mid, to);
    }
  };
  const mid = samples.length >>> 1;
  await run(0, mid);
  await run(mid, samples.length);
  return { passed, failed };
}

/** `item` when JSON can hold it, else a description (a broker must be able to store it). */
export function encodable(item: unknown): unknown {
  try {
    JSON.stringify(item);
    return item;
  } catch (error) {
    return `Unencodable item (${errorMessage(error)})`;
  }
}

/** Settles a task whose listed samples failed for good: they alone are dead-lettered. */
export function quarantineOutcome(
  delivery: Delivery,
  quarantine: Quarantined[],
  pipeline: string,
  completed: number,
  total: number,
): Outcome {
  const task = delivery.task;
  const narrowed: Task = { ...task, payload: { samples: quarantine.map((q) => q.item) } };
  // Replay checks them again: a quarantined sample is not trusted.
  delete narrowed.checked;
  const error: TaskError = {
    message: `${quarantine.length} of ${total} samples quarantined; the first: ${
      quarantine[0]!.reason
    }`,
    name: "QuarantineError",
    permanent: true,
    samples: quarantine.map((q, index) => ({ index, reason: q.reason })),
  };
  return {
    settlement: { delivery, outcome: "dead_letter", error, task: narrowed },
    pipeline,
    samples: completed,
    quarantined: quarantine.length,
  };
}

/**
 * A handler that takes `per_task` for every task, whatever its size: a
 * chain slower than ingest, for overload tests of a real process.
 *
 * @module
 */
import { defineHandler, duration, sleepUnlessAborted, z } from "../../../core/mod.ts";

export default defineHandler({
  name: "slow",
  summary: "Takes a fixed time per task (tests)",
  config: z.strictObject({
    per_task: duration().prefault("10ms").describe("Time each task takes"),
  }),
  create(config, ctx) {
    return {
      async handle(_samples, hctx) {
        await sleepUnlessAborted(ctx.clock, config.per_task, hctx.signal);
      },
    };
  },
});

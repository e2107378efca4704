/**
 * A handler of the stop-signal tests, loaded by path from its
 * configuration (`plugins: [./slow.ts]`).
 *
 * @module
 */
import { defineHandler, duration, z } from "../../../core/mod.ts";

/** Takes `delay` per task, so tasks queue up and a stop has some to drain. */
export default defineHandler({
  name: "slow",
  summary: "Takes a while per task (tests)",
  config: z.strictObject({
    delay: duration().prefault("50ms").describe("Time each task takes"),
  }),
  create(config, ctx) {
    let handled = 0;
    return {
      async handle() {
        await ctx.clock.sleep(config.delay);
        ctx.logger.debug("Task handled", { handled: ++handled });
      },
    };
  },
});

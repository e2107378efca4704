/**
 * A handler of the stop-signal tests, loaded by path from its configuration
 * (`plugins: [./hold.ts]`): it never returns, so a drain waits on it.
 *
 * @module
 */
import { defineHandler, z } from "../../../core/mod.ts";

export default defineHandler({
  name: "hold",
  summary: "Never finishes a task (tests)",
  config: z.strictObject({}),
  create() {
    return { handle: () => new Promise<never>(() => {}) };
  },
});

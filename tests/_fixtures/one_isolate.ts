/**
 * A test handler whose instances say they must stay on the main isolate, as
 * a handler on an embedded database does (`mainIsolateOnly`).
 *
 * @module
 */
import { defineHandler, z } from "../../core/mod.ts";

export default defineHandler({
  name: "one_isolate",
  summary: "Passes samples on; must stay on the main isolate (tests)",
  config: z.strictObject({}),
  create() {
    return {
      mainIsolateOnly: "it holds a test resource one isolate may open",
      handle: (samples) => samples,
    };
  },
});

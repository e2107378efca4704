import { defineHandler, z } from "../../../core/mod.ts";

export default defineHandler({
  name: "explodes",
  summary: "A handler whose create() throws (tests)",
  config: z.strictObject({}),
  create() {
    throw new Error("Cannot reach the calibration service");
  },
});

// A well-formed third-party handler, loaded beside broken ones.
import { definePlugin, z } from "../../../core/mod.ts";

export default definePlugin({
  name: "threshold",
  kind: "handler",
  summary: "Flags values above a limit",
  config: z.strictObject({
    limit: z.number().describe("Values above this are flagged"),
  }),
  create: () => ({ handle() {} }),
});

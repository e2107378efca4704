// Two third-party modules defining the same handler name.
import { definePlugin, z } from "../../../core/mod.ts";

export default definePlugin({
  name: "echo",
  kind: "handler",
  summary: "Passes samples on",
  config: z.strictObject({}),
  create: () => ({ handle() {} }),
});

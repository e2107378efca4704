// A plugin module that forgot `export default`.
import { definePlugin, z } from "../../../core/mod.ts";

export const plugin = definePlugin({
  name: "forgotten",
  kind: "handler",
  summary: "Never registered: not the default export",
  config: z.strictObject({}),
  create: () => ({ handle() {} }),
});

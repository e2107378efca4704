// A third-party plugin reusing the name of a built-in device.
import { definePlugin, z } from "../../../core/mod.ts";

export default definePlugin({
  name: "simulated",
  kind: "device",
  summary: "Clashes with the built-in simulated device",
  config: z.strictObject({}),
  create: () => ({ run: () => Promise.resolve() }),
});

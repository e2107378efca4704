import { defineHandler, z } from "../../../core/mod.ts";

export default defineHandler({
  name: "leaky",
  summary: "A handler whose create() throws quoting its settings, secrets included (tests)",
  config: z.strictObject({ url: z.string(), note: z.string() }),
  create(config) {
    throw new Error(`Cannot reach "${config.url}" (${config.note})`);
  },
});

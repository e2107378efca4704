/**
 * A plugin module served over HTTP by tests/plugin_url_test.ts. A remote
 * module cannot import local files, so it takes zod from npm directly and
 * spells out the definition (definePlugin is only an identity function).
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- served over HTTP: the import map does not apply there
import { z } from "npm:zod@4.6.7";

export default {
  name: "remote_discard",
  kind: "handler",
  summary: "A handler served over HTTP (tests)",
  config: z.strictObject({
    note: z.string().default("").describe("Free text, to show the schema is used"),
  }),
  create() {
    return { handle() {} };
  },
};

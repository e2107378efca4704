// A plugin module whose kind is not one of device, broker, handler.
import { z } from "../../../core/mod.ts";

export default {
  name: "thermo",
  kind: "sensor",
  summary: "Wrong kind",
  config: z.strictObject({}),
  create: () => ({}),
};

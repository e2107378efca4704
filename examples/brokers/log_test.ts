import { brokerConformance, testContext } from "../../core/testing.ts";
import log from "./log.ts";

brokerConformance("log (core contract only)", async () => {
  const broker = await log.create(log.config.parse({}), testContext());
  return { broker, clock: null, cleanup: () => broker.close() };
});

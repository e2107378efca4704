/**
 * The `memory` broker: an in-process task queue with priorities, delayed
 * retries and dead letters. Everything it holds is lost when the process
 * stops; use it for a single process (`role: all`), tests and development.
 *
 * @example
 * ```ts
 * import memory from "./mod.ts";
 * import { testContext } from "../../core/testing.ts";
 * const broker = await memory.create(memory.config.parse({}), testContext());
 * await broker.enqueue([{ id: "t1", type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 }]);
 * const [delivery] = await broker.reserve("worker-1", 10, new AbortController().signal);
 * ```
 *
 * @module
 */
import { defineBroker } from "../../core/mod.ts";
import { memoryBrokerConfig } from "./_config.ts";
import { MemoryBroker } from "./_broker.ts";

export { memoryBrokerConfig, type MemoryBrokerOptions } from "./_config.ts";
export { MemoryBroker, PRIORITY_SCHEDULE } from "./_broker.ts";

export default defineBroker({
  name: "memory",
  summary: "In-process task queue with priorities, retries and dead letters (not durable)",
  description: "Keeps every task in this process's memory: fast, but everything in it is lost " +
    "when the process stops. It cannot be shared between processes, so the hub and " +
    "processor roles must run in the same process (`role: all`).",
  config: memoryBrokerConfig,
  shared: false,
  create(config, ctx) {
    return new MemoryBroker(config, ctx);
  },
});

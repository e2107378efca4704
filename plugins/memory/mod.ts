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
import { defineBroker, duration, z } from "../../core/mod.ts";
import { MemoryBroker } from "./_broker.ts";

export { MemoryBroker, PRIORITY_SCHEDULE } from "./_broker.ts";

/** The `config:` block of a `type: memory` broker. */
export const memoryBrokerConfig = z.strictObject({
  capacity: z.int().min(1).default(256).describe(
    "Most tasks waiting in the queue. When full, enqueue() waits for room, which slows " +
      "the gateway down and fills the hub queue (backpressure: HTTP 503, MQTT unacknowledged, " +
      "devices blocked) instead of growing memory. Retries, releases and replays are always " +
      "accepted. 256 tasks of 1,000 samples is about 60 MB",
  ),
  retention: duration().prefault("5m").describe(
    "How long the record of a completed task stays readable by id (admin API, getTask())",
  ),
  max_retained: z.int().min(0).default(10_000).describe(
    "Most completed task records kept; beyond it the oldest are forgotten first",
  ),
  max_dead_letters: z.int().min(1).default(10_000).describe(
    "Most dead letters kept until replayed or purged; when full the oldest is dropped " +
      "and a warning is logged",
  ),
});

/** Validated options of the memory broker (the parsed `config:` block). */
export type MemoryBrokerOptions = z.output<typeof memoryBrokerConfig>;

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

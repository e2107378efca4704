/**
 * The `config:` block of the `memory` broker: its schema (types, defaults,
 * validation and the docs all come from it) and the options type it parses to.
 *
 * @module
 */
import { duration, z } from "../../core/mod.ts";

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

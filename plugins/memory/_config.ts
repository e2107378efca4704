/**
 * The `config:` block of the `memory` broker: its schema (types, defaults,
 * validation and the docs all come from it) and the options type it parses to.
 *
 * @module
 */
import { recordRetentionFields, z } from "../../core/mod.ts";

/** The `config:` block of a `type: memory` broker. */
export const memoryBrokerConfig = z.strictObject({
  capacity: z.int().min(1).default(256).describe(
    "Most tasks waiting in the queue. When full, enqueue() waits for room, which slows " +
      "the gateway down and fills the hub queue (backpressure: HTTP 503, MQTT unacknowledged, " +
      "devices blocked) instead of growing memory. Retries, releases and replays are always " +
      "accepted. 256 tasks of 1,000 samples is about 60 MB",
  ),
  ...recordRetentionFields,
});

/** Validated options of the memory broker (the parsed `config:` block). */
export type MemoryBrokerOptions = z.output<typeof memoryBrokerConfig>;

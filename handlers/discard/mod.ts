/**
 * The `discard` handler: accepts samples and drops them, like Vector's
 * `blackhole` sink. For benchmarks and throughput tests.
 *
 * @module
 */
import { defineHandler, type Sample, z } from "../../core/mod.ts";

/** Shared, frozen and empty: returning it allocates nothing and holds nothing. */
const NOTHING: readonly Sample[] = Object.freeze([]);

export default defineHandler({
  name: "discard",
  summary: "Accepts samples and drops them (for benchmarks)",
  version: "0.1.0",
  description: "Completes every task at once and keeps nothing. Handlers after it in the " +
    "chain receive no samples.",
  config: z.strictObject({}),
  create() {
    return {
      handle(): readonly Sample[] {
        return NOTHING;
      },
    };
  },
});

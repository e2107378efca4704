/**
 * The `store` handler: writes every sample of a task to `telemetry_data` in
 * PostgreSQL (or embedded PGlite) with one batched, idempotent statement,
 * so a redelivered task never stores a sample twice.
 *
 * @module
 */
import { defineHandler, type Sample, z } from "../../core/mod.ts";
import { databaseConfig, openDatabase } from "../_db/mod.ts";

export default defineHandler({
  name: "store",
  summary: "Stores samples in PostgreSQL or embedded PGlite (batched, idempotent)",
  version: "0.1.0",
  description: "Writes each task's samples to `telemetry_data` in one statement. A sample " +
    "already stored (same device, metric and seq, or same timestamp without seq) is skipped, " +
    "so redelivered tasks are harmless. Unreachable databases fail the task as retryable. " +
    "Samples pass on unchanged.",
  config: z.strictObject({ ...databaseConfig() }),
  async create(config, ctx) {
    const db = await openDatabase(config, ctx);
    return {
      async handle(samples: readonly Sample[]): Promise<void> {
        await db.insertSamples(samples);
      },
      health: () => db.health(),
      close: () => db.release(),
    };
  },
});

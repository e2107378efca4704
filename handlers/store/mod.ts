/**
 * The `store` handler: writes every sample of a task to `telemetry_data` in
 * PostgreSQL (or embedded PGlite) with one batched, idempotent statement,
 * so a redelivered task never stores a sample twice; optionally deletes
 * samples older than a retention period.
 *
 * @module
 */
import { defineHandler, type Sample, z } from "../../core/mod.ts";
import {
  databaseConfig,
  isolateNeeds,
  openDatabase,
  retentionSchema,
  startRetention,
} from "../_db/mod.ts";

export default defineHandler({
  name: "store",
  summary: "Stores samples in PostgreSQL or embedded PGlite (batched, idempotent)",
  version: "0.1.0",
  description: "Writes each task's samples to `telemetry_data` in one statement. A sample " +
    "already stored (same device, metric, timestamp and seq) is skipped, " +
    "so redelivered tasks are harmless. Unreachable databases fail the task as retryable. " +
    "With `retention`, samples older than it are deleted in the background. " +
    "Samples pass on unchanged.",
  config: z.strictObject({
    ...databaseConfig(),
    retention: retentionSchema().prefault(0).describe(
      'Delete samples whose timestamp is older than this, e.g. "30d"; 0 keeps everything. ' +
        "Checked at start and every tenth of it (at most every 5m), by one process at a time",
    ),
  }),
  async create(config, ctx) {
    const db = await openDatabase(config, ctx);
    const { clock, logger } = ctx;
    const written = ctx.metrics.counter(
      "store_samples_total",
      "Samples a store handled, by result: inserted, or duplicate (stored before; redelivery)",
      ["result"],
    );
    const expired = ctx.metrics.counter(
      "store_samples_expired_total",
      "Samples deleted because they were older than the retention",
    );
    // Series exist at 0 from start-up: dashboards show 0, not "No data".
    for (const result of ["inserted", "duplicate"]) written.inc({ result }, 0);
    expired.inc({}, 0);
    const retention = config.retention > 0
      ? startRetention(ctx, config.retention, "samples", async (signal) => {
        const deleted = await db.expireSamples(clock.now() - config.retention, { signal });
        if (deleted) {
          expired.inc({}, deleted);
          logger.info("Expired samples deleted", { samples: deleted });
        }
      })
      : undefined;

    return {
      ...isolateNeeds(db),
      async handle(samples: readonly Sample[]): Promise<void> {
        const inserted = await db.insertSamples(samples);
        written.inc({ result: "inserted" }, inserted);
        if (inserted < samples.length) {
          written.inc({ result: "duplicate" }, samples.length - inserted);
        }
      },
      health: () => db.health(),
      // Every query can be served: buckets are computed from the samples.
      series: (query) => db.readSamples(query),
      async close() {
        await retention?.stop();
        await db.release();
      },
    };
  },
});

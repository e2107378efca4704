/**
 * The `store` handler: writes every sample of a task to `telemetry_data` in
 * PostgreSQL (or embedded PGlite) with one batched, idempotent statement,
 * so a redelivered task never stores a sample twice; optionally deletes
 * samples older than a retention period.
 *
 * @module
 */
import { defineHandler, duration, errorMessage, type Sample, z } from "../../core/mod.ts";
import { databaseConfig, openDatabase } from "../_db/mod.ts";

/** Longest pause between two retention passes. */
const MAX_RETENTION_INTERVAL = 300_000;

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
    retention: duration().pipe(
      z.number().refine((ms) => ms === 0 || ms >= 60_000, {
        error: 'Expected 0 (keep everything) or at least "1m"',
      }),
    ).prefault(0).describe(
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
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ctx.signal]);

    async function expire(): Promise<void> {
      try {
        const deleted = await db.expireSamples(clock.now() - config.retention, { signal });
        if (deleted) {
          expired.inc({}, deleted);
          logger.info("Expired samples deleted", { samples: deleted });
        }
      } catch (error) {
        // Housekeeping: the next pass tries again; storing goes on meanwhile.
        logger.warn("Cannot delete expired samples", { error: errorMessage(error) });
      }
    }

    async function retentionLoop(every: number): Promise<void> {
      while (!signal.aborted) {
        await expire();
        try {
          await clock.sleep(every, signal);
        } catch {
          return;
        }
      }
    }

    const loop = config.retention > 0
      ? retentionLoop(Math.min(config.retention / 10, MAX_RETENTION_INTERVAL))
      : undefined;

    return {
      async handle(samples: readonly Sample[]): Promise<void> {
        const inserted = await db.insertSamples(samples);
        written.inc({ result: "inserted" }, inserted);
        if (inserted < samples.length) {
          written.inc({ result: "duplicate" }, samples.length - inserted);
        }
      },
      health: () => db.health(),
      async close() {
        stop.abort();
        await loop;
        await db.release();
      },
    };
  },
});

/**
 * What a settled delivery counts for, and the counting.
 *
 * @module
 */
import type { Settlement } from "../plugin.ts";
import type { RuntimeMetrics } from "./metrics.ts";

/** A settlement with what it counts for. */
export interface Outcome {
  settlement: Settlement;
  pipeline: string;
  /** Samples that completed the chain. */
  samples: number;
  /** Samples dead-lettered alone (the task's other samples completed). */
  quarantined?: number;
}

/** Counts settled outcomes in the totals and metrics of their pipelines. */
export function countOutcomes(metrics: RuntimeMetrics, outcomes: Outcome[]): void {
  for (const { settlement: s, pipeline, samples, quarantined } of outcomes) {
    const totals = metrics.totals(pipeline);
    const type = s.delivery.task.type;
    switch (s.outcome) {
      case "completed":
        totals.tasks_completed++;
        totals.samples_processed += samples;
        metrics.samplesProcessed.labels(pipeline).inc(samples);
        metrics.tasks.labels(pipeline, type, "completed").inc();
        break;
      case "retry":
        totals.tasks_retried++;
        metrics.tasks.labels(pipeline, type, "retried").inc();
        break;
      case "dead_letter":
        totals.tasks_dead_lettered++;
        metrics.tasks.labels(pipeline, type, "dead_lettered").inc();
        if (quarantined !== undefined) {
          // The task's other samples completed every handler.
          totals.samples_processed += samples;
          metrics.samplesProcessed.labels(pipeline).inc(samples);
          totals.samples_quarantined += quarantined;
          metrics.samplesQuarantined.labels(pipeline).inc(quarantined);
        }
        break;
      case "released":
        totals.tasks_released++;
        metrics.tasks.labels(pipeline, type, "released").inc();
        break;
    }
  }
}

/**
 * A complete third-party handler: clamps values into per-metric limits.
 * Loaded by `examples/telemetry.yaml` with `plugins: [./handlers/clamp.ts]`.
 * It imports only the public SDK, as every plugin must.
 *
 * @module
 */
import { defineHandler, PermanentError, type Sample, z } from "../../core/mod.ts";

const limitSchema = z.strictObject({
  min: z.number().finite().optional().describe("Values below are raised to it"),
  max: z.number().finite().optional().describe("Values above are lowered to it"),
});

export default defineHandler({
  name: "clamp",
  summary: "Clamps values into per-metric limits (example plugin)",
  version: "1.0.0",
  // The schema validates the `config:` block of telemetry.yaml, supplies defaults and
  // documents every field (`deno task plugins` lists them).
  config: z.strictObject({
    limits: z.record(z.string(), limitSchema).default({}).describe(
      "Limits by metric name; metrics not listed pass unchanged",
    ),
    mark_bad: z.boolean().default(false).describe('Mark clamped samples `quality: "bad"`'),
    reject_nan: z.boolean().default(true).describe(
      "Dead-letter a task holding a non-finite value instead of passing it on",
    ),
  }),
  // create() runs once at start-up with the validated config; open connections here.
  create(config) {
    return {
      // handle() gets read-only samples. Return nothing to pass them on unchanged, or the
      // samples for the next handler. Throw PermanentError for input that will never work
      // (the task is dead-lettered at once); any other error is retried with backoff.
      handle(samples: readonly Sample[]): readonly Sample[] | void {
        let out: Sample[] | undefined;
        for (let i = 0; i < samples.length; i++) {
          const s = samples[i]!;
          if (config.reject_nan && !Number.isFinite(s.value)) {
            throw new PermanentError(`Sample ${i} of "${s.device}" has a non-finite value`);
          }
          const limit = config.limits[s.metric];
          if (!limit) continue;
          const value = Math.min(limit.max ?? Infinity, Math.max(limit.min ?? -Infinity, s.value));
          if (value === s.value) continue;
          out ??= samples.slice(); // copy on first change: samples are never modified
          out[i] = config.mark_bad ? { ...s, value, quality: "bad" } : { ...s, value };
        }
        return out;
      },
    };
  },
});

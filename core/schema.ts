/**
 * Schema helpers for plugin configs. A plugin's `config` schema is the single
 * source of truth: types, defaults, validation, docs and the JSON Schema of
 * `telemetry.yaml` all come from it.
 *
 * Defaults of transformed fields must be given with `.prefault(...)` (parsed
 * like input) rather than `.default(...)` (zod 4 returns a default as is,
 * without running the transform).
 *
 * @module
 */
import { z } from "zod";
import { formatDuration, MAX_TIMER_MS, parseDuration } from "./duration.ts";

export { z };

/** Options of {@link duration}. */
export interface DurationOptions {
  /**
   * The value is a delay a timer waits for (an interval, a timeout, a grace
   * period): refuse values a timer cannot hold (2^31 ms, about 24.8 days, or
   * more), which would fire at once. Leave it off for lengths that are only
   * compared with times (retentions, windows).
   */
  timer?: boolean;
}

/**
 * A duration field: accepts `"250ms"`, `"5s"`, `"1m"`, or a number of
 * milliseconds; yields milliseconds.
 *
 * @example
 * ```ts
 * import { duration, z } from "./schema.ts";
 * const schema = z.strictObject({
 *   interval: duration({ timer: true }).prefault("1s").describe("How often to read"),
 *   retention: duration().prefault("30d").describe("How long readings are kept"),
 * });
 * schema.parse({}).interval; // 1000
 * ```
 */
export function duration(options: DurationOptions = {}): z.ZodPipe<
  z.ZodUnion<readonly [z.ZodString, z.ZodNumber]>,
  z.ZodTransform<number, string | number>
> {
  const { timer = false } = options;
  return z
    .union([
      z.string().regex(/^\s*(\d+(\.\d+)?(ms|s|m|h|d)?)+\s*$/, {
        error: 'Expected a duration such as "250ms", "5s", "1m" or "1h"',
      }),
      z.number().nonnegative(),
    ], {
      error: (issue) =>
        issue.code === "invalid_union"
          ? `Expected a duration such as "250ms", "5s", "1m" or "1h", got ${
            JSON.stringify(issue.input)
          }`
          : undefined,
    })
    .transform((value, ctx) => {
      const ms = typeof value === "number" ? value : parseDuration(value);
      if (ms === undefined) {
        ctx.issues.push({
          code: "custom",
          input: value,
          message: 'Expected a duration such as "250ms", "5s", "1m" or "1h"',
        });
        return z.NEVER;
      }
      if (timer && ms > MAX_TIMER_MS) {
        ctx.issues.push({
          code: "custom",
          input: value,
          message: `Must be at most ${MAX_TIMER_MS}ms (about 24.8 days), the longest a timer ` +
            `can wait, got ${JSON.stringify(value)}`,
        });
        return z.NEVER;
      }
      return ms;
    });
}

export { formatDuration };

/** Priority of a device's, pipeline's or task's work. */
export const PRIORITIES = ["high", "normal", "low"] as const;
/** Priority of a task. */
export type Priority = (typeof PRIORITIES)[number];
/**
 * The priority field schema.
 *
 * @example
 * ```ts
 * import { priority, z } from "@telemetryhub/telemetryhub";
 * const schema = z.strictObject({
 *   priority: priority().default("normal").describe("Priority of the tasks this device makes"),
 * });
 * schema.parse({}).priority; // "normal"
 * ```
 */
export function priority(): z.ZodEnum<{ high: "high"; normal: "normal"; low: "low" }> {
  return z.enum(PRIORITIES);
}

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
import { formatDuration, parseDuration } from "./duration.ts";

export { z };

/**
 * A duration field: accepts `"250ms"`, `"5s"`, `"1m"`, or a number of
 * milliseconds; yields milliseconds.
 *
 * @example
 * ```ts
 * import { duration, z } from "./schema.ts";
 * const schema = z.strictObject({
 *   interval: duration().prefault("1s").describe("How often to read"),
 * });
 * schema.parse({}).interval; // 1000
 * ```
 */
export function duration(): z.ZodPipe<
  z.ZodUnion<readonly [z.ZodString, z.ZodNumber]>,
  z.ZodTransform<number, string | number>
> {
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
      if (typeof value === "number") return value;
      const ms = parseDuration(value);
      if (ms === undefined) {
        ctx.issues.push({
          code: "custom",
          input: value,
          message: 'Expected a duration such as "250ms", "5s", "1m" or "1h"',
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
/** The priority field schema. */
export function priority(): z.ZodEnum<{ high: "high"; normal: "normal"; low: "low" }> {
  return z.enum(PRIORITIES);
}

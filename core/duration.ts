/**
 * Durations written as strings in `telemetry.yaml`: `250ms`, `5s`, `1m`,
 * `1h30m`, `1.5s`. A bare number is taken as milliseconds.
 *
 * @module
 */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * The longest delay a timer can hold: `setTimeout` and `setInterval` keep it
 * in a signed 32-bit integer, and a longer one fires at once. About 24.8 days.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/**
 * Parses a duration string into milliseconds; `undefined` when malformed.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * parseDuration("1m30s"); // 90000
 * ```
 */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  if (trimmed === "") return undefined;
  PART.lastIndex = 0;
  let total = 0;
  while (PART.lastIndex < trimmed.length) {
    const match = PART.exec(trimmed);
    if (!match) return undefined;
    total += Number(match[1]) * (UNIT_MS[match[2]!] ?? NaN);
  }
  return Number.isFinite(total) ? total : undefined;
}

/**
 * Formats milliseconds compactly (`1500` → `1.5s`).
 *
 * @example
 * ```ts
 * import { formatDuration } from "@telemetryhub/telemetryhub";
 * formatDuration(1500); // "1.5s"
 * formatDuration(3_600_000); // "1h"
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(3)}s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(3)}m`;
  return `${+(ms / 3_600_000).toFixed(3)}h`;
}

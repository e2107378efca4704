/**
 * Aggregate partials: the statistics one task adds to its windows, and how
 * the partials of several tasks merge into one upsert.
 *
 * @module
 */

/** Statistics of some samples of one device, metric and window. */
export interface AggregatePartial {
  device: string;
  metric: string;
  /** Window length in milliseconds. */
  window_ms: number;
  /** Start of the window, milliseconds since the epoch (a multiple of `window_ms`). */
  window_start: number;
  count: number;
  sum: number;
  min: number;
  max: number;
}

/** One task's partials to merge. */
export interface MergeWrite {
  taskId: string;
  rows: AggregatePartial[];
  now: number;
}

/** Merges partials of the same key, then sorts them so concurrent upserts lock in one order. */
export function combinePartials(partials: readonly AggregatePartial[]): AggregatePartial[] {
  const byKey = new Map<string, AggregatePartial>();
  for (const p of partials) {
    const key = `${p.device}\u0000${p.metric}\u0000${p.window_ms}\u0000${p.window_start}`;
    const seen = byKey.get(key);
    if (!seen) byKey.set(key, { ...p });
    else {
      seen.count += p.count;
      seen.sum += p.sum;
      seen.min = Math.min(seen.min, p.min);
      seen.max = Math.max(seen.max, p.max);
    }
  }
  const text = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return [...byKey.values()].sort((a, b) =>
    text(a.device, b.device) || text(a.metric, b.metric) || a.window_ms - b.window_ms ||
    a.window_start - b.window_start
  );
}

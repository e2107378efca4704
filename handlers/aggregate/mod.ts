/**
 * The `aggregate` handler: count, sum, min, max and mean of samples per
 * device, metric and tumbling window, merged into `aggregates`.
 *
 * Exactness without memory: each task's samples are reduced to partials
 * per (device, metric, window, window start) and merged in one statement
 * that also records the task in the `aggregate_tasks` ledger. Workers and
 * processes sharing a window add to the same row; a redelivered task finds
 * its ledger entry and adds nothing. Nothing is buffered, so shutdown loses
 * no partial window.
 *
 * @module
 */
import {
  defineHandler,
  duration,
  formatDuration,
  parseDuration,
  type Sample,
  z,
} from "../../core/mod.ts";
import {
  type AggregatePartial,
  databaseConfig,
  isolateNeeds,
  openDatabase,
  retentionSchema,
  startRetention,
} from "../_db/mod.ts";

/** Longest pause between two prunes of the ledger. */
const MAX_PRUNE_INTERVAL = 3_600_000;

/**
 * Reduces samples to partial statistics per device, metric, window and
 * window start. Windows are aligned to the epoch (a `1m` window starts on
 * a whole minute, UTC).
 */
export function partialsOf(
  samples: readonly Sample[],
  windows: readonly number[],
  includeBad = false,
): AggregatePartial[] {
  const byKey = new Map<string, AggregatePartial>();
  // Tasks hold runs of one series (the columnar wire form decodes series by series): the
  // partial of each window is looked up by key only when the series or window changes.
  const current: (AggregatePartial | undefined)[] = new Array(windows.length);
  let device: string | undefined, metric: string | undefined;
  for (const s of samples) {
    if (!includeBad && s.quality === "bad") continue;
    if (s.device !== device || s.metric !== metric) {
      device = s.device;
      metric = s.metric;
      current.fill(undefined);
    }
    const v = s.value;
    for (let k = 0; k < windows.length; k++) {
      const w = windows[k]!;
      const start = Math.floor(s.ts / w) * w;
      let p = current[k];
      if (p === undefined || p.window_start !== start) {
        const key = `${device}\u0000${metric}\u0000${w}\u0000${start}`;
        p = byKey.get(key);
        if (p === undefined) {
          byKey.set(
            key,
            current[k] = {
              device,
              metric,
              window_ms: w,
              window_start: start,
              count: 1,
              sum: v,
              min: v,
              max: v,
            },
          );
          continue;
        }
        current[k] = p;
      }
      p.count++;
      p.sum += v;
      if (v < p.min) p.min = v;
      if (v > p.max) p.max = v;
    }
  }
  return [...byKey.values()];
}

/**
 * The longest of `windows` that divides `step` (so its windows merge into
 * buckets of `step` exactly); `undefined` when none does, or `step` is 0.
 */
export function windowFor(windows: readonly number[], step: number): number | undefined {
  let best: number | undefined;
  for (const w of windows) {
    if (step > 0 && step % w === 0 && (best === undefined || w > best)) best = w;
  }
  return best;
}

const windowSchema = duration().pipe(
  z.int({ error: "Expected a whole number of milliseconds" }).min(1, {
    error: "Window must be at least 1ms",
  }),
);

export default defineHandler({
  name: "aggregate",
  summary: "Tumbling-window count, sum, min, max and mean per device and metric, stored exactly",
  version: "0.1.0",
  description: "Merges per-task partial statistics into `aggregates` with an upsert that adds " +
    "counts and sums and widens min and max, in the same statement as a ledger entry for " +
    "the task, so windows split across workers or processes are exact and redelivered " +
    "tasks count once. Samples pass on unchanged.",
  config: z.strictObject({
    ...databaseConfig(),
    windows: z.array(windowSchema).min(1).prefault(["1m"]).describe(
      'Window lengths, e.g. ["10s", "1m", "1h"]; windows start at multiples of their length',
    ),
    retention: z.record(z.string(), retentionSchema()).default({}).describe(
      "How long to keep each window's aggregates, by window, e.g. { 10s: 1d, 1m: 30d }; " +
        "windows not listed are kept. Checked at start and every tenth of the shortest (at " +
        "most every 5m), by one process at a time",
    ),
    include_bad_quality: z.boolean().default(false).describe(
      'Also aggregate samples whose quality is "bad" (flagged by analyze)',
    ),
    ledger_retention: duration().pipe(z.number().min(60_000)).prefault("1d").describe(
      "How long a handled task id is remembered; a task redelivered later is counted again",
    ),
  }).superRefine((config, ctx) => {
    for (const key of Object.keys(config.retention)) {
      const ms = parseDuration(key);
      if (ms === undefined || !config.windows.includes(ms)) {
        ctx.addIssue({
          code: "custom",
          path: ["retention", key],
          message: `"${key}" is not one of the windows ${
            config.windows.map((w) => `"${formatDuration(w)}"`).join(", ")
          }`,
        });
      }
    }
  }),
  async create(config, ctx) {
    const windows = [...new Set(config.windows)];
    const { ledger_retention: retention, include_bad_quality: includeBad } = config;
    const { clock, logger, name } = ctx;
    const db = await openDatabase(config, ctx);
    const merged = ctx.metrics.counter(
      "aggregate_tasks_total",
      "Tasks an aggregate handler saw, by result: merged, or duplicate (merged before; redelivery)",
      ["result"],
    );
    // Series exist at 0 from start-up: dashboards show 0, not "No data".
    for (const result of ["merged", "duplicate"]) merged.inc({ result }, 0);
    const pruneEvery = Math.min(retention / 10, MAX_PRUNE_INTERVAL);
    let nextPrune = clock.now();

    async function pruneIfDue(now: number): Promise<void> {
      if (now < nextPrune) return;
      nextPrune = now + pruneEvery;
      try {
        const pruned = await db.pruneAggregateLedger(now - retention);
        if (pruned > 0) logger.debug("Aggregate ledger pruned", { entries: pruned });
      } catch (error) {
        // Pruning is housekeeping: the next due prune tries again.
        logger.warn("Cannot prune the aggregate ledger", { error: String(error) });
      }
    }

    const expired = ctx.metrics.counter(
      "aggregates_expired_total",
      "Aggregate rows deleted past their window's retention",
      ["window"],
    );
    const kept = Object.entries(config.retention)
      .map(([key, ms]) => ({ window: parseDuration(key)!, label: key, ms }))
      .filter((r) => r.ms > 0);
    for (const r of kept) expired.inc({ window: r.label }, 0);
    const expiry = kept.length > 0
      ? startRetention(ctx, Math.min(...kept.map((r) => r.ms)), "aggregates", async (signal) => {
        for (const r of kept) {
          if (signal.aborted) return;
          const deleted = await db.expireAggregates(r.window, clock.now() - r.ms, { signal });
          if (deleted) {
            expired.inc({ window: r.label }, deleted);
            logger.info("Expired aggregates deleted", { window: r.label, rows: deleted });
          }
        }
      })
      : undefined;

    return {
      ...isolateNeeds(db),
      async handle(samples, hctx): Promise<void> {
        if (samples.length === 0) return;
        const now = clock.now();
        // The handler's name is part of the key: two aggregate handlers may see one task.
        const fresh = await db.mergeAggregates(
          `${name}:${hctx.task.id}`,
          partialsOf(samples, windows, includeBad),
          now,
        );
        merged.inc({ result: fresh ? "merged" : "duplicate" });
        await pruneIfDue(now);
      },
      // Nothing is buffered: every handled task is already merged.
      flush: () => Promise.resolve(),
      health: () => db.health(),
      series(query) {
        const window = windowFor(windows, query.step);
        return window === undefined ? Promise.resolve(undefined) : db.readAggregates(query, window);
      },
      async close() {
        await expiry?.stop();
        await db.release();
      },
    };
  },
});

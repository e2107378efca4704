/**
 * Reading a stored series back (the admin API's `/api/v1/series`): raw
 * samples, buckets computed from them, or buckets merged from aggregates.
 *
 * @module
 */
import type { SeriesAnswer, SeriesPoint, SeriesQuery } from "../../core/mod.ts";
import { classifyError, type Driver } from "./_drivers.ts";
import type { Statements } from "./_sql.ts";

/**
 * The latest `query.limit` stored samples of a series in its time range
 * (`query.step` 0), or buckets of `query.step` ms computed from them.
 */
export async function readSamples(
  driver: Driver,
  sql: Statements,
  query: SeriesQuery,
): Promise<SeriesAnswer> {
  const { device, metric, to, step, limit } = query;
  const from = step > 0 ? Math.floor(query.from / step) * step : query.from;
  const rows = step > 0
    ? await read(driver, sql.readSampleBuckets, [device, metric, from, to, step, limit + 1])
    : await read(driver, sql.readSamples, [device, metric, from, to, limit + 1]);
  return { source: "samples", step_ms: step, ...points(rows, limit, step > 0) };
}

/**
 * Buckets of `step` ms of a series merged from its `window` ms aggregates
 * (`step` a multiple of `window`), the latest `limit` of the range.
 */
export async function readAggregates(
  driver: Driver,
  sql: Statements,
  query: SeriesQuery,
  window: number,
): Promise<SeriesAnswer> {
  const { device, metric, to, step, limit } = query;
  const from = Math.floor(query.from / step) * step;
  const rows = await read(
    driver,
    sql.readAggregates,
    [device, metric, from, to, window, step, limit + 1],
  );
  return { source: "aggregates", step_ms: step, ...points(rows, limit, true) };
}

async function read(
  driver: Driver,
  text: string,
  params: (string | number)[],
): Promise<Record<string, unknown>[]> {
  try {
    return (await driver.query(text, params)).rows;
  } catch (error) {
    throw classifyError(error, `Cannot read series "${params[0]}" "${params[1]}"`);
  }
}

/** Rows read newest first (one more than `limit`) as points oldest first. */
function points(
  rows: Record<string, unknown>[],
  limit: number,
  buckets: boolean,
): { points: SeriesPoint[]; truncated: boolean } {
  const kept = rows.slice(0, limit).reverse();
  return {
    truncated: rows.length > limit,
    points: kept.map((r): SeriesPoint =>
      buckets
        ? [Number(r.ts), Number(r.mean), Number(r.min), Number(r.max), Number(r.count)]
        : [Number(r.ts), Number(r.value)]
    ),
  };
}

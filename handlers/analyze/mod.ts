/**
 * The `analyze` handler: per-sample calibration (linear scale and offset,
 * unit conversion), physical range validation (quality `bad`, optionally
 * dropped) and a derived rate of change per device and metric.
 *
 * @module
 */
import { defineHandler, type Sample, z } from "../../core/mod.ts";
import { globMatcher } from "../../core/mod.ts";
import { type Conversion, conversion, findUnit, KNOWN_UNITS, unitSymbol } from "./_units.ts";

const devicePattern = () =>
  z.string().min(1).default("*").describe("Device name or glob (`*`, `?`) the entry applies to");
const metricPattern = () =>
  z.string().min(1).default("*").describe("Metric name or glob (`*`, `?`) the entry applies to");

const unitName = (what: string) =>
  z.string().min(1).refine((u) => findUnit(u) !== undefined, {
    error: (issue) =>
      `Unknown unit ${JSON.stringify(issue.input)}; known: ${KNOWN_UNITS.join(", ")}`,
  }).describe(what);

const calibrationSchema = z.strictObject({
  device: devicePattern(),
  metric: metricPattern(),
  scale: z.number().finite().default(1).describe(
    "Multiplier applied to the raw value (in the sensor's unit), before any unit conversion",
  ),
  offset: z.number().finite().default(0).describe(
    "Added after `scale` (in the sensor's unit), before any unit conversion",
  ),
  from: unitName("Unit of the raw values; default: the sample's own `unit`").optional(),
  to: unitName("Unit to convert to; the output sample's `unit` is set to it").optional(),
}).superRefine((c, ctx) => {
  if (c.from !== undefined && c.to === undefined) {
    ctx.addIssue({ code: "custom", path: ["to"], message: '"from" needs "to"' });
  }
  if (c.from !== undefined && c.to !== undefined) {
    const conv = conversion(c.from, c.to);
    if (typeof conv === "string") ctx.addIssue({ code: "custom", path: ["to"], message: conv });
  }
});

const rangeSchema = z.strictObject({
  device: devicePattern(),
  metric: metricPattern(),
  min: z.number().finite().optional().describe("Lowest physically possible value (inclusive)"),
  max: z.number().finite().optional().describe("Highest physically possible value (inclusive)"),
}).refine((r) => r.min === undefined || r.max === undefined || r.min <= r.max, {
  error: '"min" must not be greater than "max"',
  path: ["min"],
});

const configSchema = z.strictObject({
  calibrations: z.array(calibrationSchema).default([]).describe(
    "Calibration entries; the first whose `device` and `metric` match a sample applies",
  ),
  ranges: z.array(rangeSchema).default([]).describe(
    "Physical ranges, checked after calibration (in output units); the first match applies. " +
      'Samples outside are marked `quality: "bad"`',
  ),
  drop_bad: z.boolean().default(false).describe(
    'Drop samples whose quality is "bad" instead of passing them on marked',
  ),
  derive_rate: z.boolean().default(false).describe(
    "Emit a `<metric>_rate` sample (unit `<unit>/s`) with the change per second since the " +
      "previous good sample of the same device and metric",
  ),
  rate_metrics: z.array(z.string().min(1)).default(["*"]).describe(
    "Metric names or globs that get a derived rate when `derive_rate` is on",
  ),
  max_series: z.int().positive().default(10_000).describe(
    "Most device+metric series remembered (for rates and per-series lookups); the idlest " +
      "is forgotten beyond it",
  ),
});

/** The validated configuration of `analyze`. */
export type AnalyzeConfig = z.output<typeof configSchema>;

/** What applies to one series, resolved once. */
interface Plan {
  scale: number;
  offset: number;
  convert: Conversion | undefined;
  unit: string | undefined;
  min: number;
  max: number;
  rate: boolean;
  /** Whether samples of this series are always passed on untouched (before range checks). */
  identity: boolean;
}

interface SeriesState {
  plan: Plan;
  /** Newest good sample seen (across batches). */
  lastTs: number;
  lastValue: number;
  hasLast: boolean;
  /** Previous good sample of this series in the batch numbered `batch`. */
  batch: number;
  batchTs: number;
  batchValue: number;
}

const MAX_WARNED = 1000;

export default defineHandler({
  name: "analyze",
  summary: "Calibrates samples, converts units, flags out-of-range values, derives rates",
  version: "0.1.0",
  description: "Runs first in a chain. Per sample: linear calibration (`scale`, `offset`), unit " +
    'conversion (°F/K→°C, kPa/psi/hPa→bar, …), range validation (`quality: "bad"`, optionally ' +
    "dropped) and, when enabled, a derived `<metric>_rate` sample. Samples are never modified " +
    "in place.",
  config: configSchema,
  create(config, ctx) {
    const calibrations = config.calibrations.map((c) => ({
      ...c,
      matches: both(globMatcher(c.device), globMatcher(c.metric)),
    }));
    const ranges = config.ranges.map((r) => ({
      ...r,
      matches: both(globMatcher(r.device), globMatcher(r.metric)),
    }));
    const rateMatchers = config.rate_metrics.map(globMatcher);
    const series = new Map<string, SeriesState>();
    const warned = new Set<string>();
    let batches = 0;

    function warnOnce(key: string, message: string, fields: Record<string, unknown>): void {
      if (warned.has(key) || warned.size >= MAX_WARNED) return;
      warned.add(key);
      ctx.logger.warn(message, fields);
    }

    function planFor(s: Sample): Plan {
      const cal = calibrations.find((c) => c.matches(s.device, s.metric));
      let convert: Conversion | undefined;
      let unit = s.unit;
      if (cal?.to !== undefined) {
        const from = cal.from ?? s.unit;
        const conv = from === undefined
          ? `Sample has no unit to convert to "${cal.to}" from`
          : conversion(from, cal.to);
        if (typeof conv === "string") {
          warnOnce(`${s.device}\0${s.metric}\0${s.unit ?? ""}`, `${conv}: passed unconverted`, {
            device: s.device,
            metric: s.metric,
          });
        } else {
          convert = conv;
          unit = unitSymbol(cal.to);
        }
      }
      const range = ranges.find((r) => r.matches(s.device, s.metric));
      const scale = cal?.scale ?? 1, offset = cal?.offset ?? 0;
      return {
        scale,
        offset,
        convert,
        unit,
        min: range?.min ?? -Infinity,
        max: range?.max ?? Infinity,
        rate: config.derive_rate && rateMatchers.some((m) => m(s.metric)),
        identity: scale === 1 && offset === 0 && convert === undefined && unit === s.unit,
      };
    }

    function stateFor(s: Sample): SeriesState {
      const key = `${s.device}\0${s.metric}\0${s.unit ?? ""}`;
      let state = series.get(key);
      if (state) {
        // Re-insert: Map order then runs from idlest to most recently used.
        series.delete(key);
      } else {
        state = {
          plan: planFor(s),
          lastTs: 0,
          lastValue: 0,
          hasLast: false,
          batch: -1,
          batchTs: 0,
          batchValue: 0,
        };
        if (series.size >= config.max_series) series.delete(series.keys().next().value!);
      }
      series.set(key, state);
      return state;
    }

    return {
      handle(samples: readonly Sample[]): readonly Sample[] | void {
        const batch = batches++;
        const out: Sample[] = [];
        let changed = false;
        let state: SeriesState | undefined;
        let prev: Sample | undefined;
        for (const s of samples) {
          // Batches mostly hold runs of one series: look it up only on change.
          if (
            !state || !prev || s.device !== prev.device || s.metric !== prev.metric ||
            s.unit !== prev.unit
          ) {
            state = stateFor(s);
          }
          prev = s;
          const { plan } = state;
          let value = s.value * plan.scale + plan.offset;
          if (plan.convert) value = plan.convert(value);
          const bad = s.quality === "bad" || value < plan.min || value > plan.max;
          if (bad && config.drop_bad) {
            changed = true;
            continue;
          }
          let result = s;
          if (!plan.identity || (bad && s.quality !== "bad")) {
            result = { ...s, value };
            if (plan.unit !== undefined) result.unit = plan.unit;
            if (bad) result.quality = "bad";
            changed = true;
          }
          out.push(result);
          if (!plan.rate || bad) continue;
          // The reference is the previous sample of the series in this batch, else the newest
          // one seen before: a redelivered batch so gets the same rates again, but its first.
          const inBatch = state.batch === batch;
          const refTs = inBatch ? state.batchTs : state.lastTs;
          const refValue = inBatch ? state.batchValue : state.lastValue;
          if ((inBatch || state.hasLast) && s.ts > refTs) {
            const rate: Sample = {
              ...result,
              metric: `${s.metric}_rate`,
              value: (value - refValue) * 1000 / (s.ts - refTs),
            };
            if (plan.unit !== undefined) rate.unit = `${plan.unit}/s`;
            out.push(rate);
            changed = true;
          }
          state.batch = batch;
          state.batchTs = s.ts;
          state.batchValue = value;
          if (!state.hasLast || s.ts > state.lastTs) {
            state.lastTs = s.ts;
            state.lastValue = value;
            state.hasLast = true;
          }
        }
        return changed ? out : undefined;
      },
    };
  },
});

function both(
  device: (name: string) => boolean,
  metric: (name: string) => boolean,
): (d: string, m: string) => boolean {
  return (d, m) => device(d) && metric(m);
}

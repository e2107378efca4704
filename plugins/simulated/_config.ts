/**
 * The config schema of the `simulated` device and the tables behind it:
 * metrics, their default signal parameters and unit conversions.
 *
 * @module
 */
import { duration, formatDuration, z } from "../../core/mod.ts";
import type { SignalParams } from "./_series.ts";

/** The metrics this device simulates. */
export const METRICS = ["temperature", "pressure", "humidity"] as const;
/** A simulated metric. */
export type MetricName = (typeof METRICS)[number];

/** Default signal parameters per metric, in °C, kPa and %RH. */
export const METRIC_DEFAULTS: Readonly<Record<MetricName, Readonly<SignalParams>>> = {
  temperature: {
    base: 50,
    amplitude: 10,
    period: 600_000,
    noise: 0.2,
    drift: 0.1,
    spike_probability: 0.001,
    spike_magnitude: 25,
    stuck_probability: 0,
    stuck_duration: 10_000,
    min: -40,
    max: 125,
  },
  pressure: {
    base: 101.3,
    amplitude: 0.8,
    period: 1_800_000,
    noise: 0.05,
    drift: 0,
    spike_probability: 0.001,
    spike_magnitude: 5,
    stuck_probability: 0,
    stuck_duration: 10_000,
    min: 0,
    max: 1000,
  },
  humidity: {
    base: 45,
    amplitude: 10,
    period: 1_200_000,
    noise: 0.5,
    drift: 0,
    spike_probability: 0.001,
    spike_magnitude: 20,
    stuck_probability: 0,
    stuck_duration: 10_000,
    min: 0,
    max: 100,
  },
};

/** A batch holds at most this many samples per metric (the auto tick and catch-up split keep to it). */
export const MAX_BATCH_PER_METRIC = 10_000;
/** The tick when `tick` is not set and the rate is low enough. */
export const DEFAULT_TICK_MS = 100;
/** Catch-up after a stall covers at most this much time (or two ticks, if longer); older samples are skipped. */
export const MAX_CATCH_UP_MS = 1000;
/** Highest accepted `rate`. */
export const MAX_RATE = 10_000_000;

// Unit conversions from the canonical unit: output = value × scale + offset.
const TEMPERATURE_UNITS = {
  "°C": { unit: "°C", scale: 1, offset: 0 },
  "°F": { unit: "°F", scale: 1.8, offset: 32 },
  K: { unit: "K", scale: 1, offset: 273.15 },
} as const;
/** Temperature units as written in the settings: the symbols samples carry, or C and F. */
const TEMPERATURE_SETTING = { "°C": "°C", "°F": "°F", K: "K", C: "°C", F: "°F" } as const;
const PRESSURE_UNITS = {
  kPa: { unit: "kPa", scale: 1, offset: 0 },
  hPa: { unit: "hPa", scale: 10, offset: 0 },
  bar: { unit: "bar", scale: 0.01, offset: 0 },
  psi: { unit: "psi", scale: 0.1450377377302092, offset: 0 },
} as const;
const HUMIDITY_UNIT = { unit: "%RH", scale: 1, offset: 0 } as const;

function metricSchema(d: Readonly<SignalParams>) {
  return z
    .strictObject({
      base: z.number().default(d.base).describe(
        "Level the signal oscillates around, in °C, kPa or %RH (before `units` conversion)",
      ),
      amplitude: z.number().nonnegative().default(d.amplitude).describe(
        "Height of the sine wave above and below the level",
      ),
      period: duration().pipe(z.number().positive()).prefault(formatDuration(d.period)).describe(
        "Length of one sine cycle",
      ),
      noise: z.number().nonnegative().default(d.noise).describe(
        "Standard deviation of the Gaussian noise added to every sample",
      ),
      drift: z.number().default(d.drift).describe(
        "Change of the level per hour since the device started (negative drifts down)",
      ),
      spike_probability: z.number().min(0).max(1).default(d.spike_probability).describe(
        "Chance, per sample, that the sample is a spike",
      ),
      spike_magnitude: z.number().nonnegative().default(d.spike_magnitude).describe(
        "How far a spike jumps from the signal, up or down at random",
      ),
      stuck_probability: z.number().min(0).max(1).default(d.stuck_probability).describe(
        "Chance, per sample, that the sensor gets stuck and repeats its last value exactly",
      ),
      stuck_duration: duration().prefault(formatDuration(d.stuck_duration)).describe(
        "How long a stuck stretch lasts",
      ),
      min: z.number().default(d.min).describe(
        "Lowest value the sensor reports; lower values are clamped to it",
      ),
      max: z.number().default(d.max).describe(
        "Highest value the sensor reports; higher values are clamped to it",
      ),
    })
    .refine((m) => m.min < m.max, { message: '"min" must be less than "max"', path: ["max"] });
}

const METRIC_SCHEMAS = {
  temperature: metricSchema(METRIC_DEFAULTS.temperature),
  pressure: metricSchema(METRIC_DEFAULTS.pressure),
  humidity: metricSchema(METRIC_DEFAULTS.humidity),
};

/** One metric to simulate, with its parameters (what `metrics` parses to). */
export type MetricConfig = { metric: MetricName } & SignalParams;

const metricList = z
  .array(z.enum(METRICS))
  .min(1)
  .refine((names) => new Set(names).size === names.length, {
    message: "Each metric may be listed once",
  });

const metricObject = z
  .strictObject({
    temperature: METRIC_SCHEMAS.temperature.optional().describe(
      "Simulate temperature, with these signal parameters (the defaults for any left out)",
    ),
    pressure: METRIC_SCHEMAS.pressure.optional().describe(
      "Simulate pressure, with these signal parameters (the defaults for any left out)",
    ),
    humidity: METRIC_SCHEMAS.humidity.optional().describe(
      "Simulate humidity, with these signal parameters (the defaults for any left out)",
    ),
  })
  .refine((m) => Object.keys(m).length > 0, { message: "Name at least one metric" });

const metricsField = z
  .union([metricList, metricObject], {
    // Report the problem of the form the user wrote, not "Invalid input".
    error(issue) {
      if (issue.code !== "invalid_union") return undefined;
      const input: unknown = issue.input;
      if (typeof input !== "object" || input === null) {
        return "Expected a list of metric names or an object of per-metric settings";
      }
      const first = issue.errors[Array.isArray(input) ? 0 : 1]?.[0];
      if (!first) return undefined;
      return first.path.length > 0 ? `${first.path.join(".")}: ${first.message}` : first.message;
    },
  })
  .transform((value): MetricConfig[] => {
    if (Array.isArray(value)) {
      return value.map((metric) => ({ metric, ...METRIC_SCHEMAS[metric].parse({}) }));
    }
    const out: MetricConfig[] = [];
    for (const metric of METRICS) {
      const params = value[metric];
      if (params) out.push({ metric, ...params });
    }
    return out;
  });

/** Schema of the `config:` block. */
export const configSchema = z.strictObject({
  rate: z.number().positive().max(MAX_RATE).default(1).describe(
    "Samples per second of each metric; fractions allowed (0.1 is one sample every 10 s)",
  ),
  tick: duration({ timer: true }).pipe(z.number().min(1)).optional().describe(
    "How often a batch is emitted; by default 100ms, or shorter at high rates so that a " +
      "batch holds at most 10,000 samples per metric (never under 1ms)",
  ),
  metrics: metricsField.prefault([...METRICS]).describe(
    "Metrics to simulate: a list of names (each with its default parameters) or an object " +
      "from name to parameter overrides",
  ),
  units: z
    .strictObject({
      temperature: z.enum(["°C", "°F", "K", "C", "F"]).default("°C")
        .transform((u) => TEMPERATURE_SETTING[u]).describe(
          "Unit of temperature samples, as they carry it: °C, °F or K (C and F are taken for " +
            "°C and °F)",
        ),
      pressure: z.enum(["kPa", "hPa", "bar", "psi"]).default("kPa").describe(
        "Unit of pressure samples: kPa, hPa, bar or psi",
      ),
    })
    .prefault({})
    .describe("Units of the samples; humidity is always %RH"),
  seed: z.int().min(0).max(0xffff_ffff).optional().describe(
    "Seed of the random source; by default derived from the device name, so two devices " +
      "differ and every run repeats",
  ),
  limit: z.int().positive().optional().describe(
    "Stop after emitting this many samples per metric, then idle until stopped; by default " +
      "no limit",
  ),
  start_seq: z.int().nonnegative().default(0).describe(
    "Sequence number of each metric's first sample",
  ),
});

/** The parsed config of a `simulated` device. */
export type SimulatedConfig = z.output<typeof configSchema>;

/** The tick used when `tick` is not configured. */
export function autoTick(rate: number): number {
  return Math.min(DEFAULT_TICK_MS, Math.max(1, (MAX_BATCH_PER_METRIC * 1000) / rate));
}

/** Unit, scale and offset of a metric's samples. */
export function unitOf(metric: MetricName, units: SimulatedConfig["units"]) {
  if (metric === "temperature") return TEMPERATURE_UNITS[units.temperature];
  if (metric === "pressure") return PRESSURE_UNITS[units.pressure];
  return HUMIDITY_UNIT;
}

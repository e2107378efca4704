/**
 * Samples and task payloads. A payload carries one sample (the seed format),
 * a list of samples, or a columnar batch; {@link decodeSamples} understands all
 * three so foreign producers keep working.
 *
 * @module
 */
import { PermanentError } from "./errors.ts";

/** One reading of one metric of one device. */
export interface Sample {
  device: string;
  metric: string;
  value: number;
  /**
   * Milliseconds since the epoch, taken as close to the read as possible;
   * may have a fractional part at rates above 1,000 samples/s.
   */
  ts: number;
  unit?: string;
  /**
   * Sequence number per device and metric; with `device`, `metric` and
   * `ts` it identifies a sample (storage uses them to stay idempotent). It
   * may start again from 0 when a device restarts.
   */
  seq?: number;
  tags?: Record<string, string>;
  /** Data quality, set by handlers such as `analyze` (absent means good). */
  quality?: "good" | "bad";
}

/**
 * A columnar series: one device and metric, parallel arrays of timestamps and
 * values. Parses far faster than an array of sample objects.
 */
export interface Series {
  device: string;
  metric: string;
  unit?: string;
  ts: number[];
  values: number[];
  seq?: number[];
  tags?: Record<string, string>;
  quality?: "good" | "bad";
}

/** The payload shapes a task may carry. */
export type SamplePayload =
  | Sample
  | { samples: Sample[] }
  | { series: Series[] };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Why a value is not a valid sample, or `undefined` when it is one. Checks
 * device, metric, a finite numeric value and an optional finite timestamp.
 */
export function sampleProblem(value: unknown): string | undefined {
  if (!isRecord(value)) return "Sample must be an object";
  if (typeof value.device !== "string" || value.device === "") {
    return '"device" must be a non-empty string';
  }
  if (typeof value.metric !== "string" || value.metric === "") {
    return '"metric" must be a non-empty string';
  }
  if (typeof value.value !== "number" || !Number.isFinite(value.value)) {
    return '"value" must be a finite number';
  }
  if (value.ts !== undefined && (typeof value.ts !== "number" || !Number.isFinite(value.ts))) {
    return '"ts" must be a finite number of milliseconds since the epoch';
  }
  if (value.unit !== undefined && typeof value.unit !== "string") return '"unit" must be a string';
  if (value.seq !== undefined && !Number.isInteger(value.seq)) return '"seq" must be an integer';
  if (value.tags !== undefined) {
    if (!isRecord(value.tags)) return '"tags" must be an object of strings';
    for (const v of Object.values(value.tags)) {
      if (typeof v !== "string") return '"tags" must be an object of strings';
    }
  }
  return undefined;
}

function checkedSample(value: unknown, where: string, now: number): Sample {
  const problem = sampleProblem(value);
  if (problem) throw new PermanentError(`${where}: ${problem}`);
  const sample = value as Sample;
  if (sample.ts === undefined) sample.ts = now;
  return sample;
}

/**
 * Turns any accepted payload shape into sample objects, validating each.
 * Throws {@link PermanentError} on a payload that can never be processed.
 */
export function decodeSamples(payload: unknown, now: number = Date.now()): Sample[] {
  if (Array.isArray(payload)) {
    return payload.map((s, i) => checkedSample(s, `payload[${i}]`, now));
  }
  if (!isRecord(payload)) throw new PermanentError("Payload must be an object");
  if (Array.isArray(payload.samples)) {
    const list = payload.samples as unknown[];
    // Fast path: trust the shape when every element is already checked below.
    const out = new Array<Sample>(list.length);
    for (let i = 0; i < list.length; i++) out[i] = checkedSample(list[i], `samples[${i}]`, now);
    return out;
  }
  if (Array.isArray(payload.series)) return decodeSeries(payload.series as unknown[]);
  if ("device" in payload || "metric" in payload || "value" in payload) {
    return [checkedSample(payload, "payload", now)];
  }
  throw new PermanentError(
    'Payload must be a sample, {"samples": [...]} or {"series": [...]}',
  );
}

function decodeSeries(series: unknown[]): Sample[] {
  const out: Sample[] = [];
  for (let i = 0; i < series.length; i++) {
    const s = series[i];
    if (!isRecord(s)) throw new PermanentError(`series[${i}]: must be an object`);
    const { device, metric, unit, ts, values, seq, tags, quality } = s;
    if (typeof device !== "string" || device === "") {
      throw new PermanentError(`series[${i}]: "device" must be a non-empty string`);
    }
    if (typeof metric !== "string" || metric === "") {
      throw new PermanentError(`series[${i}]: "metric" must be a non-empty string`);
    }
    if (!Array.isArray(ts) || !Array.isArray(values) || ts.length !== values.length) {
      throw new PermanentError(`series[${i}]: "ts" and "values" must be arrays of equal length`);
    }
    if (seq !== undefined && (!Array.isArray(seq) || seq.length !== ts.length)) {
      throw new PermanentError(`series[${i}]: "seq" must be an array as long as "ts"`);
    }
    for (let j = 0; j < ts.length; j++) {
      const t = ts[j], v = values[j];
      if (typeof t !== "number" || !Number.isFinite(t)) {
        throw new PermanentError(`series[${i}].ts[${j}]: must be a finite number`);
      }
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new PermanentError(`series[${i}].values[${j}]: must be a finite number`);
      }
      const sample: Sample = { device, metric, value: v, ts: t };
      if (typeof unit === "string") sample.unit = unit;
      if (seq) sample.seq = (seq as number[])[j]!;
      if (isRecord(tags)) sample.tags = tags as Record<string, string>;
      if (quality === "good" || quality === "bad") sample.quality = quality;
      out.push(sample);
    }
  }
  return out;
}

/**
 * Encodes samples as columnar series (grouped by device, metric and unit),
 * the compact wire form for brokers that serialize.
 */
export function encodeSeries(samples: readonly Sample[]): { series: Series[] } {
  return plainSeries(samples) ?? groupedSeries(samples);
}

/**
 * The common case, about three times faster: no tags or quality, and one
 * unit per device and metric. Nested maps avoid building a string key per
 * sample. `undefined` when the batch needs the general encoder.
 */
function plainSeries(samples: readonly Sample[]): { series: Series[] } | undefined {
  const byDevice = new Map<string, Map<string, Series>>();
  const series: Series[] = [];
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    if (s.tags !== undefined || s.quality !== undefined) return undefined;
    let metrics = byDevice.get(s.device);
    if (!metrics) byDevice.set(s.device, metrics = new Map());
    let g = metrics.get(s.metric);
    if (!g) {
      g = { device: s.device, metric: s.metric, ts: [], values: [] };
      if (s.unit !== undefined) g.unit = s.unit;
      if (s.seq !== undefined) g.seq = [];
      metrics.set(s.metric, g);
      series.push(g);
    } else if (g.unit !== s.unit || (g.seq === undefined) !== (s.seq === undefined)) {
      return undefined;
    }
    g.ts.push(s.ts);
    g.values.push(s.value);
    if (g.seq) g.seq.push(s.seq!);
  }
  return { series };
}

/** The general encoder: groups by everything a series holds once. */
function groupedSeries(samples: readonly Sample[]): { series: Series[] } {
  const groups = new Map<string, Series>();
  for (const s of samples) {
    // Everything a series holds once per group is part of the key, so no
    // sample takes another's tags, unit or quality, and seq is all-or-nothing.
    const tagKey = s.tags ? JSON.stringify(s.tags) : "";
    const key = `${s.device}\u0000${s.metric}\u0000${s.unit ?? ""}\u0000${tagKey}\u0000${
      s.quality ?? ""
    }\u0000${s.seq === undefined ? 0 : 1}`;
    let g = groups.get(key);
    if (!g) {
      g = { device: s.device, metric: s.metric, ts: [], values: [] };
      if (s.unit !== undefined) g.unit = s.unit;
      if (s.tags !== undefined) g.tags = s.tags;
      if (s.quality !== undefined) g.quality = s.quality;
      if (s.seq !== undefined) g.seq = [];
      groups.set(key, g);
    }
    g.ts.push(s.ts);
    g.values.push(s.value);
    if (s.seq !== undefined) g.seq!.push(s.seq);
  }
  return { series: [...groups.values()] };
}

/**
 * InfluxDB line protocol on the ingest route, so Telegraf (`outputs.http`
 * with `data_format = "influx"`) and other agents that speak it can send
 * samples without a translator. Written here because the npm parsers are
 * unmaintained and ignore escaping.
 *
 * `measurement[,tag=value…] field=value[,field=value…] [timestamp]`: one
 * sample per numeric field. The device is the value of the configured tag
 * (default `device`), else the measurement; the metric is the field key
 * (or `<measurement>_<field>`); the other tags become the sample's tags.
 *
 * @module
 */
import { admitSample, type Sample, type SampleInput } from "../sample.ts";
import type { Edge, InvalidItem, ParsedBody } from "./_ingest.ts";

/** One parsed line. */
export interface Point {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, number | string | boolean>;
  /** In the request's precision; `undefined` when the line has none. */
  timestamp?: bigint;
}

/** How lines become samples. */
export interface LineProtocolOptions {
  /** Tag naming the device; a line without it uses its measurement. */
  device_tag: string;
  /** `field`: the field key; `measurement_field`: `<measurement>_<field>`. */
  metric: "field" | "measurement_field";
}

/** Timestamp precisions and their length in nanoseconds. */
export const PRECISIONS = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n } as const;
/** A timestamp precision of the `precision` query parameter. */
export type Precision = keyof typeof PRECISIONS;

/**
 * Reads up to an unescaped character of `stops` from `at`; backslash
 * escapes any of `escapable`. Returns the text and where it stopped.
 */
function token(line: string, at: number, stops: string, escapable: string): [string, number] {
  let out = "";
  let i = at;
  while (i < line.length) {
    const c = line[i]!;
    if (c === "\\" && i + 1 < line.length && escapable.includes(line[i + 1]!)) {
      out += line[i + 1];
      i += 2;
      continue;
    }
    if (stops.includes(c)) break;
    out += c;
    i++;
  }
  return [out, i];
}

const BOOLEANS: Record<string, boolean> = {
  t: true,
  T: true,
  true: true,
  True: true,
  TRUE: true,
  f: false,
  F: false,
  false: false,
  False: false,
  FALSE: false,
};

function fieldValue(raw: string): number | boolean {
  if (raw in BOOLEANS) return BOOLEANS[raw]!;
  const text = /^-?\d+[iu]$/.test(raw) ? raw.slice(0, -1) : raw;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    throw new Error(`Field value ${JSON.stringify(raw)} is not a number, boolean or string`);
  }
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`Field value ${JSON.stringify(raw)} is not finite`);
  return value;
}

/** Parses one line; throws with the reason when it is malformed. */
export function parseLine(line: string): Point {
  let [measurement, i] = token(line, 0, ", ", ", \\");
  if (measurement === "") throw new Error("Line has no measurement");
  const tags: Record<string, string> = {};
  while (line[i] === ",") {
    const [key, afterKey] = token(line, i + 1, "=, ", ",= \\");
    if (line[afterKey] !== "=" || key === "") {
      throw new Error(`Tag ${JSON.stringify(key)} has no value`);
    }
    const [value, afterValue] = token(line, afterKey + 1, ", ", ",= \\");
    if (value === "") throw new Error(`Tag ${JSON.stringify(key)} has an empty value`);
    tags[key] = value;
    i = afterValue;
  }
  if (line[i] !== " ") throw new Error("Line has no fields");
  while (line[i] === " ") i++;
  const fields: Record<string, number | string | boolean> = {};
  for (;;) {
    const [key, afterKey] = token(line, i, "=, ", ",= \\");
    if (line[afterKey] !== "=" || key === "") {
      throw new Error(`Field ${JSON.stringify(key)} has no value`);
    }
    i = afterKey + 1;
    if (line[i] === '"') {
      const [text, end] = token(line, i + 1, '"', '"\\');
      if (line[end] !== '"') throw new Error(`String field ${JSON.stringify(key)} is not closed`);
      fields[key] = text;
      i = end + 1;
    } else {
      const [raw, end] = token(line, i, ", ", "");
      fields[key] = fieldValue(raw);
      i = end;
    }
    if (line[i] !== ",") break;
    i++;
  }
  const rest = line.slice(i).trim();
  if (rest === "") return { measurement, tags, fields };
  if (!/^-?\d+$/.test(rest)) throw new Error(`Timestamp ${JSON.stringify(rest)} is not an integer`);
  return { measurement, tags, fields, timestamp: BigInt(rest) };
}

/**
 * Parses a line-protocol body into samples. Every malformed line is
 * reported by its index; string fields are not samples and are counted in
 * `skipped`.
 */
export function parseLineProtocolBody(
  text: string,
  edge: Edge,
  options: LineProtocolOptions,
  precision: Precision = "ns",
): ParsedBody & { skipped?: number } {
  const invalid: InvalidItem[] = [];
  const samples: Sample[] = [];
  const unit = PRECISIONS[precision];
  let skipped = 0;
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    let point: Point;
    try {
      point = parseLine(line);
    } catch (error) {
      invalid.push({ index, reason: (error as Error).message });
      continue;
    }
    // A point without a timestamp is stamped at the edge (time of arrival and a unique seq).
    const ts = point.timestamp === undefined
      ? undefined
      : Number((point.timestamp * unit) / 1000n) / 1000;
    const { [options.device_tag]: device, ...tags } = point.tags;
    // The device came from a tag: keep the measurement it was sent under.
    if (device !== undefined) tags.measurement ??= point.measurement;
    const hasTags = Object.keys(tags).length > 0;
    for (const [field, value] of Object.entries(point.fields)) {
      if (typeof value === "string") {
        skipped++;
        continue;
      }
      const sample: SampleInput = {
        device: device ?? point.measurement,
        metric: options.metric === "field" ? field : `${point.measurement}_${field}`,
        value: typeof value === "boolean" ? Number(value) : value,
      };
      if (ts !== undefined) sample.ts = ts;
      if (hasTags) sample.tags = { ...tags };
      const reason = admitSample(sample, edge.now, edge.stamper);
      if (reason) invalid.push({ index, reason: `Field "${field}": ${reason}` });
      else samples.push(sample as Sample);
    }
  }
  if (invalid.length > 0) return { ok: false, invalid };
  if (samples.length === 0) {
    return {
      ok: false,
      malformed: skipped > 0 ? "Body holds no numeric fields" : "Body holds no samples",
    };
  }
  return { ok: true, samples, skipped };
}

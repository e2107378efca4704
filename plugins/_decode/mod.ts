/**
 * Private library of the device plugins that receive text (`serial` lines,
 * `mqtt` payloads): named-group regular expressions and JSON to samples,
 * and the config fields that set them up. No I/O, so it is tested from
 * fixtures alone.
 *
 * @module
 */
import { isRecord, type SampleInput, z } from "../../core/mod.ts";

/** Per-metric conversion: `value × scale + offset`, with a unit. */
export interface Conversions {
  units: Readonly<Record<string, string>>;
  scale: Readonly<Record<string, number>>;
  offset: Readonly<Record<string, number>>;
}

/**
 * Turns one text line read at `ts` into samples; throws when the line does
 * not decode. Without `ts` (and none in the line), samples leave it out and
 * the hub's edge stamps them when they are emitted.
 */
export type LineDecoder = (line: string, ts?: number) => SampleInput[];

function converter(device: string, conv: Conversions) {
  return (metric: string, raw: number, ts: number | undefined): SampleInput => {
    const value = raw * (conv.scale[metric] ?? 1) + (conv.offset[metric] ?? 0);
    const sample: SampleInput = { device, metric, value };
    const unit = conv.units[metric];
    if (unit !== undefined) sample.unit = unit;
    if (ts !== undefined) sample.ts = ts;
    return sample;
  };
}

/** Names of the named groups of `pattern`, in order. */
export function groupNames(pattern: RegExp): string[] {
  const names: string[] = [];
  for (const m of pattern.source.matchAll(/\(\?<([A-Za-z_$][\w$]*)>/g)) {
    names.push(m[1]!);
  }
  return names;
}

/** Compiles `source`, or throws an error that quotes it. */
export function compilePattern(source: string): RegExp {
  let pattern: RegExp;
  try {
    pattern = new RegExp(source);
  } catch (error) {
    throw new Error(`Invalid regular expression "${source}"`, { cause: error });
  }
  if (groupNames(pattern).length === 0) {
    throw new Error(
      `Regular expression "${source}" has no named group such as (?<temperature>…)`,
    );
  }
  return pattern;
}

/**
 * A decoder giving one sample per named group of `source` that matched a
 * number. Groups that did not take part in the match are left out.
 */
export function regexDecoder(
  device: string,
  source: string,
  conv: Conversions,
): LineDecoder {
  const pattern = compilePattern(source);
  const names = groupNames(pattern);
  const make = converter(device, conv);
  return (line, ts) => {
    const groups = pattern.exec(line)?.groups;
    if (!groups) throw new Error(`Line "${line}" does not match "${source}"`);
    const samples: SampleInput[] = [];
    for (const name of names) {
      const text = groups[name];
      if (text === undefined) continue;
      const raw = Number(text);
      if (text.trim() === "" || !Number.isFinite(raw)) {
        throw new Error(
          `Group "${name}" of line "${line}" is not a number: "${text}"`,
        );
      }
      samples.push(make(name, raw, ts));
    }
    return samples;
  };
}

/**
 * A decoder of JSON lines: a sample object (`{"metric", "value", …}`), an
 * array of them, or a flat object of metric → number (other values are
 * ignored). `ts` of the line is used unless the object carries its own.
 */
export function jsonDecoder(device: string, conv: Conversions): LineDecoder {
  const make = converter(device, conv);
  const fromSample = (
    o: Record<string, unknown>,
    ts: number | undefined,
    line: string,
  ): SampleInput => {
    if (typeof o.metric !== "string" || typeof o.value !== "number") {
      throw new Error(
        `JSON sample of line "${line}" needs a string "metric" and a number "value"`,
      );
    }
    const s = make(o.metric, o.value, typeof o.ts === "number" ? o.ts : ts);
    if (typeof o.unit === "string") s.unit = o.unit;
    if (typeof o.seq === "number") s.seq = o.seq;
    if (isRecord(o.tags)) s.tags = o.tags as Record<string, string>;
    return s;
  };
  return (line, ts) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new Error(`Line "${line}" is not JSON`, { cause: error });
    }
    if (Array.isArray(value)) {
      return value.map((o) => {
        if (!isRecord(o)) {
          throw new Error(`Line "${line}" is not an array of sample objects`);
        }
        return fromSample(o, ts, line);
      });
    }
    if (!isRecord(value)) {
      throw new Error(`Line "${line}" is not a JSON object`);
    }
    if ("metric" in value && "value" in value) {
      return [fromSample(value, ts, line)];
    }
    const samples: SampleInput[] = [];
    for (const [metric, v] of Object.entries(value)) {
      if (typeof v === "number" && Number.isFinite(v)) {
        samples.push(make(metric, v, ts));
      }
    }
    if (samples.length === 0) {
      throw new Error(`Line "${line}" has no numeric field`);
    }
    return samples;
  };
}

/** The `pattern` field: a regular expression with named groups. */
export const pattern = () =>
  z.string().min(1).refine((source) => {
    try {
      compilePattern(source);
      return true;
    } catch {
      return false;
    }
  }, {
    error: "Expected a valid regular expression with at least one named group (?<metric>…)",
  })
    .describe(
      "Regular expression with one named group per metric, e.g. `T=(?<temperature>-?[0-9.]+)`; " +
        "each group that matches a number gives one sample",
    );

/** The per-metric conversion fields: `units`, `scale`, `offset`. */
export const conversions = {
  units: z.record(z.string(), z.string()).default({}).describe(
    "Unit per metric (group or JSON field), e.g. `{temperature: °C}`",
  ),
  scale: z.record(z.string(), z.number()).default({}).describe(
    "Factor per metric applied to the read value (`value × scale + offset`); 1 when absent",
  ),
  offset: z.record(z.string(), z.number()).default({}).describe(
    "Offset per metric added after scaling; 0 when absent",
  ),
};

/**
 * Task payloads: reading a task's samples (one sample, the seed format; a
 * list of samples; or a columnar batch, so foreign producers keep working)
 * and the compact columnar form brokers that serialize store.
 *
 * @module
 */
import { PermanentError } from "./errors.ts";
import { seedFrom } from "./random.ts";
import { isRecord, type Sample, sampleProblem, type Series } from "./sample.ts";

/**
 * The `seq` of the `index`th sample of a task that carries no timestamp for
 * it: derived from the task id, so a redelivery gives the same identity.
 *
 * @example
 * ```ts
 * import { taskSampleSeq } from "@telemetryhub/telemetryhub";
 * taskSampleSeq("task-1", 0) === taskSampleSeq("task-1", 0); // true: a redelivery keeps its identity
 * ```
 */
export function taskSampleSeq(taskId: string, index: number): number {
  return (seedFrom(taskId) >>> 11) * 2 ** 32 + (index % 2 ** 32);
}

/** A payload item the edge refused: where it was in the payload, why, and the item. */
export interface RefusedItem {
  /** Its position, e.g. `samples[3]` or `series[0][2]`. */
  where: string;
  /** Why, as {@link sampleProblem} words it, e.g. `"value" must be a finite number`. */
  reason: string;
  /** The refused item (for a series, the sample built from its arrays). */
  item: unknown;
}

/** What {@link decodeTaskSamples} found in a payload. */
export interface DecodedPayload {
  /** The valid samples, in payload order, each with a `ts`. */
  samples: Sample[];
  /** Items that are not valid samples (never for a task the hub's gateway made). */
  refused: RefusedItem[];
}

/**
 * Reads a task's samples. A task the hub's gateway made (`checked`) is
 * trusted: its samples were checked and stamped at the edge. Any other
 * task (a foreign producer's) is the edge: each item is checked, invalid
 * ones are returned in `refused` (the runtime quarantines them alone), and
 * samples without `ts` take the task's `created_at` with a `seq` derived
 * from the task id and position, so a redelivery is recognised.
 * Throws {@link PermanentError} when the payload is no sample container.
 *
 * @example
 * ```ts
 * import { decodeTaskSamples } from "@telemetryhub/telemetryhub";
 * const { samples, refused } = decodeTaskSamples({
 *   id: "task-1",
 *   created_at: 1000,
 *   payload: { samples: [{ device: "boiler", metric: "temp", value: 71.5 }, { device: "boiler" }] },
 * });
 * samples.length; // 1, with ts 1000
 * refused[0]?.where; // "samples[1]"
 * ```
 */
export function decodeTaskSamples(
  task: { id: string; payload: unknown; created_at: number; checked?: boolean },
): DecodedPayload {
  const { payload } = task;
  if (task.checked === true && isRecord(payload)) {
    if (Array.isArray(payload.samples)) {
      return { samples: payload.samples as Sample[], refused: [] };
    }
    if (Array.isArray(payload.series)) return decodeSeries(payload.series as unknown[], task);
  }
  let items: unknown[];
  let where: (i: number) => string;
  if (Array.isArray(payload)) [items, where] = [payload, (i) => `payload[${i}]`];
  else if (!isRecord(payload)) throw new PermanentError("Payload must be an object");
  else if (Array.isArray(payload.samples)) {
    [items, where] = [payload.samples as unknown[], (i) => `samples[${i}]`];
  } else if (Array.isArray(payload.series)) {
    return decodeSeries(payload.series as unknown[], task);
  } else if ("device" in payload || "metric" in payload || "value" in payload) {
    [items, where] = [[payload], () => "payload"];
  } else {
    throw new PermanentError(
      'Payload must be a sample, {"samples": [...]} or {"series": [...]}',
    );
  }
  const samples: Sample[] = [];
  const refused: RefusedItem[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const reason = sampleProblem(item);
    if (reason) {
      refused.push({ where: where(i), reason, item });
      continue;
    }
    const sample = item as Sample;
    if (sample.ts === undefined) {
      sample.ts = task.created_at;
      if (sample.seq === undefined) sample.seq = taskSampleSeq(task.id, i);
    }
    samples.push(sample);
  }
  return { samples, refused };
}

/**
 * Turns any accepted payload shape into sample objects, validating each.
 * Throws {@link PermanentError} on the first item that is not a valid sample.
 * Samples without `ts` get `now` (see {@link decodeTaskSamples} for the
 * identity-keeping form the runtime uses).
 *
 * @example
 * ```ts
 * import { decodeSamples } from "@telemetryhub/telemetryhub";
 * decodeSamples({ series: [{ device: "boiler", metric: "temp", ts: [1000, 2000], values: [71.5, 72] }] });
 * // [{ device: "boiler", metric: "temp", value: 71.5, ts: 1000 }, { …, value: 72, ts: 2000 }]
 * ```
 */
export function decodeSamples(payload: unknown, now: number = Date.now()): Sample[] {
  const { samples, refused } = decodeTaskSamples({ id: "", payload, created_at: now });
  const first = refused[0];
  if (first) throw new PermanentError(`${first.where}: ${first.reason}`);
  return samples;
}

function decodeSeries(
  series: unknown[],
  task: { id: string; created_at: number; checked?: boolean },
): DecodedPayload {
  const out: Sample[] = [];
  const refused: RefusedItem[] = [];
  const trusted = task.checked === true;
  for (let i = 0; i < series.length; i++) {
    const s = series[i];
    if (!isRecord(s)) throw new PermanentError(`series[${i}]: must be an object`);
    const { device, metric, unit, ts, values, seq, tags, quality } = s;
    if (!Array.isArray(ts) || !Array.isArray(values) || ts.length !== values.length) {
      throw new PermanentError(`series[${i}]: "ts" and "values" must be arrays of equal length`);
    }
    if (seq !== undefined && (!Array.isArray(seq) || seq.length !== ts.length)) {
      throw new PermanentError(`series[${i}]: "seq" must be an array as long as "ts"`);
    }
    for (let j = 0; j < ts.length; j++) {
      const sample = { device, metric, value: values[j], ts: ts[j] } as Sample;
      if (unit !== undefined) sample.unit = unit as string;
      if (seq) sample.seq = (seq as number[])[j]!;
      if (tags !== undefined) sample.tags = tags as Record<string, string>;
      if (quality !== undefined) sample.quality = quality as "good" | "bad";
      if (!trusted) {
        const reason = sampleProblem(sample);
        if (reason) {
          refused.push({ where: `series[${i}][${j}]`, reason, item: sample });
          continue;
        }
      }
      out.push(sample);
    }
  }
  return { samples: out, refused };
}

/**
 * A task payload as a broker stores it: `{samples: [...]}` becomes the
 * columnar `{series: [...]}` (smaller, and parses several times faster);
 * anything else is kept as it is. A payload of the hub's gateway
 * (`checked`) holds only samples that passed the edge, so it is not scanned.
 *
 * @example
 * ```ts
 * import { compactPayload } from "@telemetryhub/telemetryhub";
 * compactPayload({ samples: [{ device: "boiler", metric: "temp", value: 71.5, ts: 1000 }] });
 * // { series: [{ device: "boiler", metric: "temp", ts: [1000], values: [71.5] }] }
 * ```
 */
export function compactPayload(payload: unknown, checked = false): unknown {
  if (!isRecord(payload) || !Array.isArray(payload.samples)) return payload;
  if (Object.keys(payload).length !== 1) return payload;
  const samples = payload.samples as unknown[];
  if (!checked) {
    for (const s of samples) {
      if (!isRecord(s) || typeof s.ts !== "number") return payload; // let the worker report it
    }
  }
  return encodeSeries(samples as Sample[]);
}

/**
 * Encodes samples as columnar series (grouped by device, metric and unit),
 * the compact wire form for brokers that serialize.
 *
 * @example
 * ```ts
 * import { encodeSeries } from "@telemetryhub/telemetryhub";
 * encodeSeries([
 *   { device: "boiler", metric: "temp", value: 71.5, ts: 1000 },
 *   { device: "boiler", metric: "temp", value: 72, ts: 2000 },
 * ]); // { series: [{ device: "boiler", metric: "temp", ts: [1000, 2000], values: [71.5, 72] }] }
 * ```
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

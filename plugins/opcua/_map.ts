/**
 * Pure mapping of OPC UA data changes to samples, without node-opcua: which
 * device and metric a monitored node feeds, what a status code means for
 * `quality`, which timestamp becomes `ts`, and which values are numbers.
 *
 * @module
 */
import type { SampleInput } from "../../core/mod.ts";

/** One monitored node as configured: where its values go. */
export interface NodeTarget {
  node_id: string;
  device: string;
  metric: string;
  unit?: string;
}

/** What node-opcua's DataValue carries that a sample needs (kept structural, for tests). */
export interface DataChange {
  /** The variant's value: a number, boolean, bigint, `[high, low]` for 64-bit integers, or else. */
  value: unknown;
  /** The 32-bit OPC UA status code. */
  status: number;
  /** Its symbolic name, e.g. `BadSensorFailure`. */
  statusName: string;
  sourceTimestamp?: Date | null;
  serverTimestamp?: Date | null;
}

/**
 * The severity of a status code (its two top bits): 00 Good, 01 Uncertain,
 * 10 Bad (Part 4, 7.39).
 */
export function severity(status: number): "good" | "uncertain" | "bad" {
  const bits = (status >>> 30) & 0b11;
  return bits === 0 ? "good" : bits === 1 ? "uncertain" : "bad";
}

/** `quality` of a sample: absent for Good; Uncertain and Bad both become `"bad"`. */
export function qualityOf(status: number): "bad" | undefined {
  return severity(status) === "good" ? undefined : "bad";
}

/**
 * `ts` of a sample: the source timestamp (when the value changed at its
 * source), else the server's, else absent (the edge stamps the arrival). A
 * zero or invalid date counts as absent: OPC UA sends "no time" as 1601.
 */
export function timestampOf(change: Pick<DataChange, "sourceTimestamp" | "serverTimestamp">) {
  for (const date of [change.sourceTimestamp, change.serverTimestamp]) {
    const ms = date?.getTime();
    if (ms !== undefined && Number.isFinite(ms) && ms > 0) return ms;
  }
  return undefined;
}

/**
 * The number in an OPC UA value: numbers as they are, booleans as 1 and 0,
 * 64-bit integers (node-opcua's `[high, low]` pair, or a bigint) as the
 * nearest double; `undefined` for anything else (strings, arrays, null).
 */
export function numberOf(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "bigint") return Number(value);
  if (
    Array.isArray(value) && value.length === 2 && typeof value[0] === "number" &&
    typeof value[1] === "number"
  ) {
    return value[0] * 2 ** 32 + (value[1] >>> 0);
  }
  return undefined;
}

/** What became of one data change: a sample, or why there is none. */
export type Mapped = { sample: SampleInput } | { error: string };

/**
 * The sample of one data change of `target`. A Good value that is not a
 * number is an error naming the node; a Bad or Uncertain one without a
 * number as well (there is nothing to store), while a Bad or Uncertain
 * number becomes a sample with `quality: "bad"` and the status name in the
 * `opcua_status` tag.
 */
export function toSample(target: NodeTarget, change: DataChange): Mapped {
  const value = numberOf(change.value);
  if (value === undefined) {
    const what = change.value === null || change.value === undefined
      ? "no value"
      : `a value of type ${Array.isArray(change.value) ? "array" : typeof change.value}`;
    return {
      error: `Node "${target.node_id}" has ${what}, not a number (status ${change.statusName})`,
    };
  }
  const sample: SampleInput = { device: target.device, metric: target.metric, value };
  if (target.unit !== undefined) sample.unit = target.unit;
  const ts = timestampOf(change);
  if (ts !== undefined) sample.ts = ts;
  const quality = qualityOf(change.status);
  if (quality) {
    sample.quality = quality;
    sample.tags = { opcua_status: change.statusName };
  }
  return { sample };
}

/** A configured node: the target plus the table's optional device. */
export interface NodeEntry {
  node_id: string;
  device?: string | undefined;
  metric: string;
  unit?: string | undefined;
}

/**
 * The node table: one target per configured node, with this device's name
 * where an entry names none. Throws on a node listed twice, or two nodes
 * feeding the same device and metric (their samples would be merged).
 */
export function nodeTable(entries: readonly NodeEntry[], defaultDevice: string): NodeTarget[] {
  const nodes = new Set<string>();
  const series = new Map<string, string>();
  return entries.map((entry) => {
    if (nodes.has(entry.node_id)) throw new Error(`Node "${entry.node_id}" is listed twice`);
    nodes.add(entry.node_id);
    const device = entry.device ?? defaultDevice;
    const key = `${device}\u0000${entry.metric}`;
    const other = series.get(key);
    if (other !== undefined) {
      throw new Error(
        `Nodes "${other}" and "${entry.node_id}" both feed device "${device}" metric "${entry.metric}"`,
      );
    }
    series.set(key, entry.node_id);
    const target: NodeTarget = { node_id: entry.node_id, device, metric: entry.metric };
    if (entry.unit !== undefined) target.unit = entry.unit;
    return target;
  });
}

/**
 * A metric name for a browsed node: its browse path below the Objects
 * folder in snake case (`Plant/Boiler 1/Temp` → `plant_boiler_1_temp`).
 */
export function metricName(path: readonly string[]): string {
  return path.join("_").replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_").replace(/_+/g, "_").replace(/^_|_$/g, "") || "value";
}

/**
 * Parsing and validating `POST /api/v1/samples` bodies: one sample or an
 * array (JSON), or one sample per line (NDJSON). Each item passes the hub's
 * edge (`admitSample()`); every invalid item is reported by index, and a
 * request with any invalid item is rejected whole.
 *
 * @module
 */
import { admitSample, type Sample, type SampleStamper } from "../sample.ts";

/** An item that cannot be accepted. */
export interface InvalidItem {
  index: number;
  reason: string;
}

/** What a body parses to. */
export type ParsedBody =
  | { ok: true; samples: Sample[] }
  | { ok: false; malformed: string }
  | { ok: false; invalid: InvalidItem[] };

/** Where a body's samples are checked and stamped: the hub's edge. */
export interface Edge {
  now: number;
  stamper: SampleStamper;
}

function check(items: unknown[], edge: Edge, invalid: InvalidItem[], offset = 0): Sample[] {
  const samples: Sample[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const reason = admitSample(item, edge.now, edge.stamper);
    if (reason) invalid.push({ index: i + offset, reason });
    // JSON.parse made a fresh object: keep it rather than copy it (the hot path).
    else samples.push(item as Sample);
  }
  return samples;
}

/** Parses a JSON body: one sample object or an array of them. */
export function parseJsonBody(text: string, edge: Edge): ParsedBody {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, malformed: `Body is not valid JSON: ${(error as Error).message}` };
  }
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0) return { ok: false, malformed: "Body holds no samples" };
  const invalid: InvalidItem[] = [];
  const samples = check(items, edge, invalid);
  return invalid.length > 0 ? { ok: false, invalid } : { ok: true, samples };
}

/** Parses an NDJSON body: one sample per non-empty line; the index is the line's. */
export function parseNdjsonBody(text: string, edge: Edge): ParsedBody {
  const invalid: InvalidItem[] = [];
  const samples: Sample[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      invalid.push({ index: i, reason: "Line is not valid JSON" });
      continue;
    }
    samples.push(...check([value], edge, invalid, i));
  }
  if (invalid.length > 0) return { ok: false, invalid };
  if (samples.length === 0) return { ok: false, malformed: "Body holds no samples" };
  return { ok: true, samples };
}

/**
 * Samples: their shape, the checks every way in makes (the edge), and the
 * identity stamped on samples that arrive without one. Payloads are read and
 * written by `sample_codec.ts`.
 *
 * @module
 */

/** One reading of one metric of one device. */
export interface Sample {
  /** Name of the device read: non-empty, at most 256 bytes of UTF-8, no control characters. */
  device: string;
  /** Name of the metric, same rules as `device` (e.g. `temperature`). */
  metric: string;
  /** The reading, a finite number, in `unit` when given. */
  value: number;
  /**
   * Milliseconds since the epoch, taken as close to the read as possible;
   * may have a fractional part at rates above 1,000 samples/s.
   */
  ts: number;
  /** Unit of `value` (e.g. `°C`, `kPa`), at most 64 bytes of UTF-8; absent when unknown. */
  unit?: string;
  /**
   * Sequence number per device and metric; with `device`, `metric` and
   * `ts` it identifies a sample (storage uses them to stay idempotent). It
   * may start again from 0 when a device restarts.
   */
  seq?: number;
  /** Extra dimensions (site, line), stored with the sample: at most 32 tags. */
  tags?: Record<string, string>;
  /** Data quality, set by handlers such as `analyze` (absent means good). */
  quality?: "good" | "bad";
}

/**
 * A sample as a producer hands it to the hub: `ts` may be absent, and the
 * edge stamps it (see {@link SampleStamper}).
 */
export type SampleInput = Omit<Sample, "ts"> & { ts?: number };

/**
 * A columnar series: one device and metric, parallel arrays of timestamps and
 * values. Parses far faster than an array of sample objects.
 */
export interface Series {
  /** {@link Sample.device} of every sample. */
  device: string;
  /** {@link Sample.metric} of every sample. */
  metric: string;
  /** {@link Sample.unit} of every sample. */
  unit?: string;
  /** {@link Sample.ts} of each sample; as long as `values`. */
  ts: number[];
  /** {@link Sample.value} of each sample. */
  values: number[];
  /** {@link Sample.seq} of each sample when present; then as long as `ts`. */
  seq?: number[];
  /** {@link Sample.tags} of every sample. */
  tags?: Record<string, string>;
  /** {@link Sample.quality} of every sample. */
  quality?: "good" | "bad";
}

/** The payload shapes a task may carry. */
export type SamplePayload =
  | Sample
  | { samples: Sample[] }
  | { series: Series[] };

/**
 * Whether a value is a plain mapping: an object that is neither `null` nor an
 * array.
 *
 * @example
 * ```ts
 * import { isRecord } from "@telemetryhub/telemetryhub";
 * const value: unknown = JSON.parse('{"a": 1}');
 * if (isRecord(value)) console.log(Object.keys(value));
 * ```
 */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * What every built-in handler and both stores accept, checked once where a
 * sample enters the hub (see {@link sampleProblem}). The README's "Sample
 * limits" table is this object.
 */
export const SAMPLE_LIMITS = {
  /** Earliest `ts`: 1970-01-01T00:00:00Z. */
  minTs: 0,
  /** Latest `ts`: 9999-12-31T23:59:59.999Z (PostgreSQL and JavaScript dates both hold it). */
  maxTs: 253_402_300_799_999,
  /** Most UTF-8 bytes of `device` and `metric`. */
  maxNameBytes: 256,
  /** Most UTF-8 bytes of `unit`. */
  maxUnitBytes: 64,
  /** Most tags per sample. */
  maxTags: 32,
  /** Most UTF-8 bytes of a tag key. */
  maxTagKeyBytes: 128,
  /** Most UTF-8 bytes of a tag value. */
  maxTagValueBytes: 256,
} as const;

/** The `quality` values a sample may carry. */
export const QUALITIES: readonly string[] = ["good", "bad"];

/** UTF-8 length of a well-formed string, without encoding it. */
function utf8Bytes(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4; // a surrogate pair (the string is well-formed)
      i++;
    } else n += 3;
  }
  return n;
}

/** C0 and C1 control characters and DEL: they break logs, metrics and PostgreSQL (NUL). */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/**
 * Text that passed the checks, by string: devices send the same few names
 * over and over, so each is checked once. Only text of at most
 * {@link CACHED_TEXT_BYTES} is remembered, which fits every field's limit.
 * The set is cleared when it grows too big.
 */
const knownText = new Set<string>();
const KNOWN_TEXT_MAX = 4096;
const CACHED_TEXT_BYTES = SAMPLE_LIMITS.maxUnitBytes;
/** Why `value` is not acceptable text for `field`, or `undefined`. */
function textProblem(value: unknown, field: string, maxBytes: number): string | undefined {
  if (typeof value !== "string" || value === "") return `"${field}" must be a non-empty string`;
  if (knownText.has(value)) return undefined;
  // At most 3 UTF-8 bytes per UTF-16 unit: short text needs no count.
  const bytes = value.length * 3 <= CACHED_TEXT_BYTES ? 0 : utf8Bytes(value);
  if (bytes > maxBytes) return `"${field}" must be at most ${maxBytes} bytes of UTF-8`;
  if (!value.isWellFormed()) return `"${field}" holds a lone surrogate (not valid UTF-8)`;
  if (hasControl(value)) return `"${field}" holds a control character`;
  if (bytes <= CACHED_TEXT_BYTES) {
    if (knownText.size >= KNOWN_TEXT_MAX) knownText.clear();
    knownText.add(value);
  }
  return undefined;
}

function tagsProblem(tags: unknown): string | undefined {
  if (!isRecord(tags)) return '"tags" must be an object of strings';
  let n = 0;
  for (const key in tags) {
    if (++n > SAMPLE_LIMITS.maxTags) {
      return `"tags" must hold at most ${SAMPLE_LIMITS.maxTags} tags`;
    }
    const problem = textProblem(key, "tags", SAMPLE_LIMITS.maxTagKeyBytes) ??
      textProblem(tags[key], `tags.${key}`, SAMPLE_LIMITS.maxTagValueBytes);
    if (problem) return problem;
  }
  return undefined;
}

/** A short description of a wrong value: `the string "21.5"`, `null`, `NaN`. */
function describeValue(v: unknown): string {
  if (typeof v === "string") return `the string ${JSON.stringify(v.slice(0, 40))}`;
  if (v === null || typeof v === "number") return String(v);
  return `a ${Array.isArray(v) ? "array" : typeof v}`;
}

/**
 * Why a value is not a valid sample, or `undefined` when it is one: the
 * edge contract every way in applies (see {@link SAMPLE_LIMITS}). `ts` and
 * `seq` may be absent; the edge stamps them (see {@link SampleStamper}).
 *
 * @example
 * ```ts
 * import { sampleProblem } from "@telemetryhub/telemetryhub";
 * sampleProblem({ device: "boiler", metric: "temp", value: NaN }); // '"value" must be a finite number'
 * sampleProblem({ device: "boiler", metric: "temp", value: 71.5 }); // undefined
 * ```
 */
export function sampleProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "Sample must be an object";
  }
  const { device, metric, value: v, ts, seq, unit, tags, quality } = value as Record<
    string,
    unknown
  >;
  const problem = textProblem(device, "device", SAMPLE_LIMITS.maxNameBytes) ??
    textProblem(metric, "metric", SAMPLE_LIMITS.maxNameBytes);
  if (problem) return problem;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    const got = v === undefined ? " (none given)" : `, not ${describeValue(v)}`;
    return `"value" must be a finite number${got}`;
  }
  if (ts !== undefined) {
    if (typeof ts !== "number" || !(ts >= SAMPLE_LIMITS.minTs && ts <= SAMPLE_LIMITS.maxTs)) {
      return '"ts" must be a finite number of milliseconds since the epoch, from 1970 to 9999';
    }
  }
  if (seq !== undefined && !Number.isSafeInteger(seq)) {
    return '"seq" must be an integer between -(2^53 - 1) and 2^53 - 1';
  }
  if (unit !== undefined) {
    const p = textProblem(unit, "unit", SAMPLE_LIMITS.maxUnitBytes);
    if (p) return p;
  }
  if (tags !== undefined) {
    const p = tagsProblem(tags);
    if (p) return p;
  }
  if (quality !== undefined && quality !== "good" && quality !== "bad") {
    return '"quality" must be "good" or "bad"';
  }
  return undefined;
}

/**
 * Gives samples that arrive without a timestamp an identity: `ts` is the
 * arrival time and, unless the producer sent one, `seq` is a number unique
 * to this stamper, so samples arriving in the same millisecond stay
 * distinct. A stamper draws a random 21-bit prefix, so two processes (or a
 * restarted one) do not hand out the same numbers.
 *
 * @example
 * ```ts
 * import { type SampleInput, SampleStamper } from "@telemetryhub/telemetryhub";
 * const stamper = new SampleStamper();
 * const sample: SampleInput = { device: "boiler", metric: "temp", value: 71.5 };
 * stamper.stamp(sample, Date.now()); // sample.ts and sample.seq are set
 * ```
 */
export class SampleStamper {
  #prefix: number;
  #counter = 0;

  /** `random` (0 ≤ x < 1) draws the prefix; pass a seeded one for repeatable `seq`s. */
  constructor(random: () => number = Math.random) {
    this.#prefix = Math.floor(random() * 2 ** 21) * 2 ** 32;
  }

  /** The next unique `seq`. */
  next(): number {
    const n = this.#counter;
    this.#counter = (n + 1) % 2 ** 32;
    return this.#prefix + n;
  }

  /** Stamps `sample` in place when it has no `ts`. */
  stamp(sample: SampleInput, now: number): void {
    if (sample.ts !== undefined) return;
    sample.ts = now;
    if (sample.seq === undefined) sample.seq = this.next();
  }
}

/**
 * The edge, for one item: why it is refused, or `undefined` once it is
 * accepted and stamped (a sample without `ts` gets one, see
 * {@link SampleStamper}). Every way into the hub calls this.
 *
 * @example
 * ```ts
 * import { admitSample, SampleStamper } from "@telemetryhub/telemetryhub";
 * const stamper = new SampleStamper();
 * admitSample({ device: "boiler", metric: "temp", value: 71.5 }, Date.now(), stamper); // undefined: accepted
 * admitSample({ device: "", metric: "temp", value: 1 }, Date.now(), stamper); // '"device" must be a non-empty string'
 * ```
 */
export function admitSample(
  value: unknown,
  now: number,
  stamper: SampleStamper,
): string | undefined {
  const problem = sampleProblem(value);
  if (problem === undefined) stamper.stamp(value as Sample, now);
  return problem;
}

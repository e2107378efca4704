/**
 * The label guard: label values from request data are sanitized and capped,
 * so callers cannot add series without bound.
 *
 * @module
 */
import type { Logger } from "./log.ts";
import client from "prom-client";

/** Label value that stands for every value past a cap (devices past `metrics.max_devices`). */
export const OVERFLOW_LABEL = "_other";
/** Default of `metrics.max_devices`. */
export const DEFAULT_MAX_DEVICES = 1000;
/** Most task types no pipeline routes (pushed by a foreign producer) labelled by name. */
export const MAX_UNROUTED_TASK_TYPES = 100;
/** Longest label value kept, in code points; longer values are cut and end in "…". */
export const MAX_LABEL_LENGTH = 128;

/** Values that need no change: no control character, no lone surrogate, not too long. */
const CLEAN_LABEL = new RegExp(`^[^\\p{Cc}\\uD800-\\uDFFF]{0,${MAX_LABEL_LENGTH}}$`, "u");
const CONTROL = /\p{Cc}/gu;

/**
 * Turns any string into a label value that is safe to expose: lone
 * surrogates (not valid UTF-8) and control characters (NUL, CR, ESC…)
 * become U+FFFD, and values longer than {@link MAX_LABEL_LENGTH} code
 * points are cut. Prometheus' own escaping covers only `\\`, `"` and `\n`.
 */
export function labelValue(raw: string): string {
  if (CLEAN_LABEL.test(raw)) return raw;
  const clean = raw.toWellFormed().replace(CONTROL, "\uFFFD");
  const points = [...clean];
  return points.length <= MAX_LABEL_LENGTH
    ? clean
    : points.slice(0, MAX_LABEL_LENGTH - 1).join("") + "…";
}

/**
 * The values of one label that request data can name (devices, task
 * types): each is sanitized by {@link labelValue}; known values and the
 * first `max` others keep their own label, later ones share
 * {@link OVERFLOW_LABEL}, and the first of those is reported once.
 */
export class CappedLabels {
  max: number;
  onOverflow: ((value: string, max: number) => void) | undefined;
  #known = new Set<string>();
  #others = new Set<string>();
  /** Raw value → label, for values that got their own label (bounded). */
  #cache = new Map<string, string>();
  #overflowed = false;

  constructor(max: number) {
    this.max = max;
  }

  /** Values that always keep their own label, replacing the previous ones. */
  setKnown(values: Iterable<string>): void {
    this.#known = new Set([...values].map(labelValue));
    this.#cache.clear();
  }

  /** Adds a value that always keeps its own label. */
  addKnown(value: string): void {
    this.#known.add(labelValue(value));
  }

  /** The label value of `raw`. */
  label(raw: string): string {
    return this.#cache.get(raw) ?? this.#admit(raw);
  }

  #admit(raw: string): string {
    const label = labelValue(raw);
    if (label === OVERFLOW_LABEL) return label;
    if (!this.#known.has(label) && !this.#others.has(label)) {
      if (this.#others.size >= this.max) {
        if (!this.#overflowed) {
          this.#overflowed = true;
          this.onOverflow?.(label, this.max);
        }
        return OVERFLOW_LABEL;
      }
      this.#others.add(label);
    }
    // Several raw values can share a label (cut or sanitized): keep the cache bounded.
    if (this.#cache.size < 2 * (this.max + this.#known.size) + 64) this.#cache.set(raw, label);
    return label;
  }
}

/** How `RuntimeMetrics` labels devices (see `RuntimeMetrics.configure()`). */
export interface DeviceLabelOptions {
  /** Devices of the configuration: each always gets its own label. */
  devices: Iterable<string>;
  /** Most other devices labelled by name; the rest count under {@link OVERFLOW_LABEL}. */
  maxDevices: number;
  /** Called once, for the first device past the cap. */
  onOverflow?: (device: string, maxDevices: number) => void;
}

/**
 * A counter whose `labels()` passes some label values through a guard, so
 * that callers labelling by request data cannot add series without bound.
 */
export class GuardedCounter<T extends string> extends client.Counter<T> {
  readonly #guards: Array<[T, number, (value: string) => string]>;

  constructor(
    config: client.CounterConfiguration<T> & { labelNames: readonly T[] },
    guards: Partial<Record<T, (value: string) => string>>,
  ) {
    super(config);
    this.#guards = config.labelNames.flatMap((name, i) => {
      const guard = guards[name];
      return guard ? [[name, i, guard] as [T, number, (value: string) => string]] : [];
    });
  }

  override labels(...values: string[]): client.Counter.Internal;
  override labels(labels: client.LabelValues<T>): client.Counter.Internal;
  override labels(...args: [client.LabelValues<T>] | string[]): client.Counter.Internal {
    const first = args[0];
    if (typeof first === "object") {
      const guarded: client.LabelValues<T> = { ...first };
      for (const [name, , guard] of this.#guards) {
        const v = guarded[name];
        if (v !== undefined) guarded[name] = guard(String(v)) as client.LabelValues<T>[T];
      }
      return super.labels(guarded);
    }
    const values = [...args] as string[];
    for (const [, i, guard] of this.#guards) {
      if (values[i] !== undefined) values[i] = guard(values[i]);
    }
    return super.labels(...values);
  }
}

/**
 * The device label settings of a configuration: its devices keep their own
 * series, and the first device past `metrics.max_devices` that is not in it
 * is reported once.
 */
export function deviceLabelOptions(
  config: { devices: Record<string, unknown>; metrics: { max_devices: number } },
  logger: Logger,
): DeviceLabelOptions {
  return {
    devices: Object.keys(config.devices),
    maxDevices: config.metrics.max_devices,
    onOverflow: (device, max) =>
      logger.warn(
        `More than ${max} devices not in the configuration: further ones are counted under ` +
          `device="${OVERFLOW_LABEL}" in metrics (raise metrics.max_devices to see them)`,
        { device, max_devices: max },
      ),
  };
}

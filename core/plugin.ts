/**
 * The plugin contract. Every device, broker and handler, built-in or
 * third-party, is a module whose default export is made with
 * {@link definePlugin} (or the typed helpers {@link defineDevice},
 * {@link defineBroker}, {@link defineHandler}).
 *
 * @module
 */
import type { z } from "zod";
import type { Clock } from "./clock.ts";
import type { EventBus } from "./events.ts";
import type { Logger } from "./log.ts";
import type { Random } from "./random.ts";
import type { Sample, SampleInput } from "./sample.ts";
import type { BrokerInstance } from "./broker.ts";
import type { Task } from "./task.ts";

// The broker contract lives in broker.ts; named here too so imports of it keep working.
export {
  type BrokerDepth,
  type BrokerInstance,
  type DeadLetter,
  type DeadLetterPage,
  type DeadLetterSelector,
  type Delivery,
  type Settlement,
} from "./broker.ts";

/** The three kinds of plugin. */
export type PluginKind = "device" | "broker" | "handler";
/** Every plugin kind. */
export const PLUGIN_KINDS: readonly PluginKind[] = ["device", "broker", "handler"];

/** What every plugin instance is given by the runtime. */
export interface PluginContext {
  /** The component's name in `telemetry.yaml` (the key under `devices:` etc.). */
  name: string;
  /** The runtime's logger, adding the component to every line (`{handler: "db"}`). */
  logger: Logger;
  /** The runtime's clock: take time and timers from it, so tests can use a fake one. */
  clock: Clock;
  /** Seeded per component, so behaviour is reproducible. */
  random: Random;
  /** Aborts when the runtime stops this component. */
  signal: AbortSignal;
  /**
   * Directory of the configuration file: relative paths of files the plugin
   * reads (certificates, patterns, modules) resolve against it.
   */
  baseDir: string;
  /**
   * Where relative paths of data the plugin writes (a database, a queue
   * file) resolve: the directory the process was started in, whose `./data`
   * `deno task run` may write, wherever the configuration file is.
   */
  dataDir: string;
  /**
   * Process-wide events between plugins (e.g. `anomaly` from the anomaly
   * handler to the alert handler), including ones no task carries.
   */
  events: EventBus;
  /**
   * The plugin's own Prometheus metrics (what it found, sent or skipped),
   * served on `/metrics` beside the runtime's. Task counts, durations and
   * device states are counted by the runtime: never count those yourself.
   */
  metrics: PluginMetrics;
}

/** Label values of a plugin metric; labels left unset are left out of the series. */
export type MetricLabels<L extends string> = Partial<Record<L, string | number>>;

/** A plugin counter: only goes up. */
export interface PluginCounter<L extends string = string> {
  /** Adds `value` (default 1, never negative) to the series of `labels`. */
  inc(labels?: MetricLabels<L>, value?: number): void;
}

/** A plugin gauge: a value that goes up and down. */
export interface PluginGauge<L extends string = string> {
  /** Sets the series of `labels` to `value`. */
  set(labels: MetricLabels<L>, value: number): void;
  /** Adds `value` (default 1) to the series of `labels`. */
  inc(labels?: MetricLabels<L>, value?: number): void;
  /** Subtracts `value` (default 1) from the series of `labels`. */
  dec(labels?: MetricLabels<L>, value?: number): void;
}

/** A plugin histogram: observations counted in buckets. */
export interface PluginHistogram<L extends string = string> {
  /** Counts one observation of `value` (seconds for a `_seconds` metric) in the series of `labels`. */
  observe(labels: MetricLabels<L>, value: number): void;
}

/**
 * Metrics a plugin defines. Names are given without the `telemetry_`
 * prefix and follow `<name>_<unit>[_total]` (`anomalies_total`,
 * `alert_delivery_seconds`); counters end in `_total`. Every series also
 * carries the component's kind and name as a label (`handler="alert"`), so
 * two instances of a plugin are told apart. Asking again for a name returns
 * the same metric (every worker's instance adds to it); asking with another
 * kind of metric or other labels throws. Label values are sanitized
 * (control characters and lone surrogates replaced, length bounded), and a
 * label named `device` shares the runtime's cap on distinct devices
 * (`metrics.max_devices`), so labelling by request data stays bounded.
 */
export interface PluginMetrics {
  /** The counter `telemetry_<name>` (`name` ending in `_total`), with the label names `labels`. */
  counter<L extends string = never>(
    name: string,
    help: string,
    labels?: readonly L[],
  ): PluginCounter<L>;
  /** The gauge `telemetry_<name>`, with the label names `labels`. */
  gauge<L extends string = never>(
    name: string,
    help: string,
    labels?: readonly L[],
  ): PluginGauge<L>;
  /**
   * The histogram `telemetry_<name>`, with the label names `labels`;
   * `buckets` are the upper bounds (default: Prometheus' defaults, in seconds).
   */
  histogram<L extends string = never>(
    name: string,
    help: string,
    labels?: readonly L[],
    buckets?: readonly number[],
  ): PluginHistogram<L>;
}

// ---------------------------------------------------------------- devices

/** Options of {@link DeviceIO.emit}. */
export interface EmitOptions {
  /** Return a promise that settles once the samples are held by the broker. */
  durable?: boolean;
}

/** The runtime side of a running device. */
export interface DeviceIO {
  /**
   * Hands a batch of samples to the pipeline's hub queue. Returns a promise
   * only when the queue is full with `overflow: block`; await it to apply
   * backpressure. Do not reuse the array after handing it over.
   *
   * Each sample is checked here against the sample limits: a refused one is
   * left out and counted as a read error (its reason becomes the device's
   * `last_error`). A sample without `ts` is stamped with the time of the call
   * and a unique `seq`, so samples read in the same millisecond stay apart.
   *
   * With `{ durable: true }` the promise settles only once the samples are
   * as safe as the broker makes them (committed to a durable broker; queued,
   * for the in-process one): what a device that acknowledges its source
   * (MQTT QoS 1, say) waits for before acknowledging. It rejects when they
   * will not be kept (the pipeline is stopping and the broker is gone).
   */
  emit(samples: SampleInput[], options?: EmitOptions): void | Promise<void>;
  /** Reports that the device answers (state `up`). Cheap to call often. */
  up(): void;
  /** Reports that the device is unreachable (state `down`); logged once per change. */
  down(error: unknown): void;
  /** Counts a failed read that does not change the device state. */
  readError(error: unknown): void;
  /** Aborts when the device must stop. */
  signal: AbortSignal;
}

/** A running device. */
export interface DeviceInstance {
  /**
   * Reads until `io.signal` aborts, then resolves. Resolving before the
   * abort means the source is exhausted (a finite file, say): the device
   * shows as `stopped` and is not run again. Throwing marks the device
   * `down`; the runtime runs it again after an exponential backoff.
   */
  run(io: DeviceIO): Promise<void>;
  /** Releases resources (ports, child processes). */
  close?(): Promise<void>;
}

// ---------------------------------------------------------------- handlers

/** What a handler sees about the task it is working on. */
export interface HandlerContext {
  /** The task being handled, its payload not yet decoded (id, type, attempts, pipeline). */
  task: Readonly<Task>;
  /** 1 for the first attempt. */
  attempt: number;
  /** Name of the pipeline whose handler chain is running the task. */
  pipeline: string;
  /**
   * Aborts when shutdown's grace period is over: stop and throw. The task
   * then goes back to the queue without spending an attempt.
   */
  signal: AbortSignal;
  /** The runtime's clock, as in {@link PluginContext.clock}. */
  clock: Clock;
  /**
   * Passes items (anomalies, say) to later handlers of the same chain, by
   * topic. Items are lost if the task is retried; later handlers see them
   * again on the next attempt.
   */
  publish(topic: string, item: unknown): void;
  /** Items published on `topic` by earlier handlers in this attempt. */
  published(topic: string): readonly unknown[];
}

/** What a handler returns: nothing (samples pass on unchanged) or the samples for the next handler. */
export type HandlerResult = void | readonly Sample[];

/**
 * A running handler. `handle` returns (success) or throws: a
 * `PermanentError` dead-letters the task at once, any other error retries it
 * with backoff until attempts run out. Handlers never acknowledge, sleep to
 * retry or count themselves; the runtime does. The samples are read-only:
 * return new objects to change them.
 */
export interface HandlerInstance {
  /**
   * Handles the samples of one task (already decoded and checked): returns
   * nothing to pass them on unchanged, or the samples for the next handler
   * (an empty array stops the chain for this task, which still completes).
   */
  handle(samples: readonly Sample[], ctx: HandlerContext): HandlerResult | Promise<HandlerResult>;
  /** Writes out buffered state (partial windows) before shutdown. */
  flush?(): Promise<void>;
  /** Throws when a dependency (database, webhook) is unreachable. */
  health?(): Promise<void>;
  /** Releases connections and timers when the component stops, after `flush`. */
  close?(): Promise<void>;
  /**
   * Optional, read-only: the stored points of one series, for the admin
   * API's `GET /api/v1/series` and the console. Answer `undefined` when this
   * handler cannot serve the query (an aggregate with no window fitting the
   * step, say); the admin API then asks the other handlers. Never changes
   * state, and never returns more than `query.limit` points.
   */
  series?(query: SeriesQuery): Promise<SeriesAnswer | undefined>;
}

/** What {@link HandlerInstance.series} is asked for. */
export interface SeriesQuery {
  /** Device name, exactly as in the samples. */
  device: string;
  /** Metric name, exactly as in the samples. */
  metric: string;
  /** First timestamp included (ms since epoch). */
  from: number;
  /** Last timestamp included (ms since epoch). */
  to: number;
  /** Bucket length in ms; 0 asks for the samples as stored. */
  step: number;
  /** Most points to return: the latest ones when there are more. */
  limit: number;
}

/**
 * One point: `[ts, value]` for a stored sample, or `[ts, mean, min, max,
 * count]` for a bucket (`ts` its start).
 */
export type SeriesPoint =
  | readonly [ts: number, value: number]
  | readonly [ts: number, mean: number, min: number, max: number, count: number];

/** What {@link HandlerInstance.series} answers. */
export interface SeriesAnswer {
  /** Where the points come from: `samples` (raw, or bucketed from them) or `aggregates`. */
  source: "samples" | "aggregates";
  /** The bucket length served (0: samples as stored). */
  step_ms: number;
  /** Oldest first. */
  points: SeriesPoint[];
  /** Whether more points matched than `limit` (the oldest were left out). */
  truncated: boolean;
}

// ---------------------------------------------------------------- definitions

/** Instance type created by each kind: what {@link PluginDefinition.create} returns. */
export interface InstanceOf {
  /** A device reads samples and emits them. */
  device: DeviceInstance;
  /** A broker queues tasks between the hub and the workers. */
  broker: BrokerInstance;
  /** A handler works on the samples of tasks. */
  handler: HandlerInstance;
}

/**
 * A plugin definition: what `telemetry.yaml` names with `type:`.
 *
 * @typeParam K the kind
 * @typeParam S the config schema (a zod schema)
 */
export interface PluginDefinition<
  K extends PluginKind = PluginKind,
  S extends z.ZodType = z.ZodType,
> {
  /** The `type:` users write; lower-case letters, digits, `_` and `-`. */
  name: string;
  /** Whether this is a device, a broker or a handler. */
  kind: K;
  /** One line shown by `plugins`. */
  summary: string;
  /** The plugin's version, shown by `plugins` as `name@version`. */
  version?: string;
  /** Longer text, Markdown. */
  description?: string;
  /** Strict schema of the component's `config:` block; every field described. */
  config: S;
  /**
   * Brokers: whether several processes can share one, as the `shared` of its
   * instances says. Declared here so that `validate` refuses split roles on a
   * broker that cannot be shared without creating one; when left out, only
   * `run` finds out.
   */
  shared?: boolean;
  /** Builds an instance from a validated config. */
  create(config: z.output<S>, ctx: PluginContext): InstanceOf[K] | Promise<InstanceOf[K]>;
}

/** Any plugin definition. */
// deno-lint-ignore no-explicit-any -- the config type varies per plugin; create() is only called with configs parsed by the same definition's schema
export type AnyPluginDefinition = PluginDefinition<PluginKind, any>;

/**
 * Makes a plugin definition. Identity at run time; gives type inference.
 *
 * @example
 * ```ts
 * import { definePlugin } from "./plugin.ts";
 * import { z } from "./schema.ts";
 * export default definePlugin({
 *   name: "count",
 *   kind: "handler",
 *   summary: "Counts samples",
 *   config: z.strictObject({}),
 *   create() {
 *     let n = 0;
 *     return { handle(samples) { n += samples.length; } };
 *   },
 * });
 * ```
 */
export function definePlugin<K extends PluginKind, S extends z.ZodType>(
  definition: PluginDefinition<K, S>,
): PluginDefinition<K, S> {
  return definition;
}

/**
 * {@link definePlugin} for devices.
 *
 * @example
 * ```ts
 * import { defineDevice, duration, sleepUnlessAborted, z } from "@telemetryhub/telemetryhub";
 * export default defineDevice({
 *   name: "counter",
 *   summary: "Emits a count that goes up",
 *   config: z.strictObject({
 *     interval: duration({ timer: true }).prefault("1s").describe("Time between samples"),
 *   }),
 *   create(config, ctx) {
 *     return {
 *       async run(io) {
 *         for (let n = 0; await sleepUnlessAborted(ctx.clock, config.interval, io.signal); n++) {
 *           await io.emit([{ device: ctx.name, metric: "count", value: n }]);
 *           io.up();
 *         }
 *       },
 *     };
 *   },
 * });
 * ```
 */
export function defineDevice<S extends z.ZodType>(
  definition: Omit<PluginDefinition<"device", S>, "kind">,
): PluginDefinition<"device", S> {
  return { ...definition, kind: "device" };
}

/**
 * {@link definePlugin} for brokers.
 *
 * @example
 * ```ts
 * import { type BrokerInstance, defineBroker, z } from "@telemetryhub/telemetryhub";
 * // Opens the connection and returns the broker: the part not shown here.
 * function connect(url: string, _signal: AbortSignal): Promise<BrokerInstance> {
 *   return Promise.reject(new Error(`Cannot connect to "${url}": not shown here`));
 * }
 * export default defineBroker({
 *   name: "myqueue",
 *   summary: "Keeps tasks in a MyQueue server",
 *   shared: true,
 *   config: z.strictObject({ url: z.string().describe("Server URL") }),
 *   create: (config, ctx) => connect(config.url, ctx.signal),
 * });
 * ```
 */
export function defineBroker<S extends z.ZodType>(
  definition: Omit<PluginDefinition<"broker", S>, "kind">,
): PluginDefinition<"broker", S> {
  return { ...definition, kind: "broker" };
}

/**
 * {@link definePlugin} for handlers.
 *
 * @example
 * ```ts
 * import { defineHandler, z } from "@telemetryhub/telemetryhub";
 * export default defineHandler({
 *   name: "scale",
 *   summary: "Multiplies every value",
 *   config: z.strictObject({ factor: z.number().default(1).describe("Multiplier") }),
 *   create(config) {
 *     return { handle: (samples) => samples.map((s) => ({ ...s, value: s.value * config.factor })) };
 *   },
 * });
 * ```
 */
export function defineHandler<S extends z.ZodType>(
  definition: Omit<PluginDefinition<"handler", S>, "kind">,
): PluginDefinition<"handler", S> {
  return { ...definition, kind: "handler" };
}

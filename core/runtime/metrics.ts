/**
 * The runtime's metrics. The runtime counts for every plugin; plugins never
 * count themselves. Each runtime has its own prom-client registry, so tests
 * can run several side by side. Plain totals are kept beside the Prometheus
 * series for the stop summary and the status API.
 *
 * @module
 */
import client from "prom-client";
import type { PluginKind, PluginMetrics } from "../plugin.ts";
import {
  CappedLabels,
  DEFAULT_MAX_DEVICES,
  type DeviceLabelOptions,
  GuardedCounter,
  labelValue,
  MAX_LABEL_LENGTH,
  MAX_UNROUTED_TASK_TYPES,
  OVERFLOW_LABEL,
} from "../_metric_labels.ts";
import { pluginMetrics } from "../plugin_metrics.ts";

export {
  CappedLabels,
  DEFAULT_MAX_DEVICES,
  type DeviceLabelOptions,
  labelValue,
  MAX_LABEL_LENGTH,
  MAX_UNROUTED_TASK_TYPES,
  OVERFLOW_LABEL,
};

/** Totals of one pipeline, cheap to read. */
export interface PipelineTotals {
  samples_read: number;
  samples_dropped: number;
  samples_processed: number;
  /** Samples refused at the edge (never accepted): invalid content. */
  samples_refused: number;
  /** Accepted samples dead-lettered alone because a handler could never take them. */
  samples_quarantined: number;
  tasks_enqueued: number;
  tasks_completed: number;
  tasks_retried: number;
  tasks_dead_lettered: number;
  tasks_released: number;
}

/** A zeroed {@link PipelineTotals}. */
export function emptyTotals(): PipelineTotals {
  return {
    samples_read: 0,
    samples_dropped: 0,
    samples_processed: 0,
    samples_refused: 0,
    samples_quarantined: 0,
    tasks_enqueued: 0,
    tasks_completed: 0,
    tasks_retried: 0,
    tasks_dead_lettered: 0,
    tasks_released: 0,
  };
}

/** A cheap counter child (see {@link RuntimeMetrics.fastCounter}). */
export interface FastCounter {
  inc(n?: number): void;
}

/** Task outcomes counted by `telemetry_tasks_total`. */
export const TASK_OUTCOMES = ["completed", "retried", "dead_lettered", "released"] as const;
/** A task outcome counted by `telemetry_tasks_total`. */
export type TaskOutcome = (typeof TASK_OUTCOMES)[number];

/** Reasons counted by `telemetry_samples_dropped_total`. */
export const DROP_REASONS = [
  "queue_full_oldest",
  "queue_full_newest",
  "closed",
  "broker_unavailable",
  "unencodable",
] as const;
/** A reason counted by `telemetry_samples_dropped_total`. */
export type DropReason = (typeof DROP_REASONS)[number];

/** Queue names of `telemetry_queue_depth`. */
export type QueueName = "hub" | "broker" | "inflight" | "delayed" | "dead_letter";

/** Bucket bounds 1, 2.5, 5 per decade from `min` up to `max` (in seconds). */
function decadeBuckets(min: number, max: number): number[] {
  const out: number[] = [];
  for (let decade = min; decade <= max; decade *= 10) {
    for (const step of [1, 2.5, 5]) {
      const bound = Number((decade * step).toPrecision(3));
      if (bound <= max) out.push(bound);
    }
  }
  return out;
}

/** Sample latency: 1 ms to a minute. */
const LATENCY_BUCKETS = [...decadeBuckets(0.001, 10), 30, 60];
/** Handler time per task: 100 µs to 10 s. */
const DURATION_BUCKETS = decadeBuckets(0.0001, 10);

/** Every metric of a runtime, on one registry. */
export class RuntimeMetrics {
  readonly registry: client.Registry;
  readonly samplesIngested: client.Counter<"pipeline" | "device">;
  readonly samplesDropped: client.Counter<"pipeline" | "reason">;
  readonly samplesProcessed: client.Counter<"pipeline">;
  readonly samplesRefused: client.Counter<"pipeline" | "source">;
  readonly samplesQuarantined: client.Counter<"pipeline">;
  readonly tasksEnqueued: client.Counter<"pipeline" | "type">;
  readonly tasks: client.Counter<"pipeline" | "type" | "outcome">;
  readonly taskDuration: client.Histogram<"pipeline" | "handler">;
  readonly sampleLatency: client.Histogram<"pipeline">;
  readonly queueDepth: client.Gauge<"pipeline" | "broker" | "queue">;
  readonly deviceUp: client.Gauge<"device">;
  readonly deviceReadErrors: client.Counter<"device">;
  readonly deviceRestarts: client.Counter<"device">;
  /** 1, labelled with the running version (set by the program, see {@link buildInfo}). */
  readonly buildInfo: client.Gauge<"version" | "deno">;
  readonly httpRequests: client.Counter<"route" | "status">;
  #totals = new Map<string, PipelineTotals>();
  #counterIds = new Map<object, number>();
  #fast = new Map<
    string,
    FastCounter & { entry: { pending: number; child: { inc(n: number): void } } }
  >();
  #depthProbes: Array<() => Promise<void> | void> = [];
  #devices = new CappedLabels(DEFAULT_MAX_DEVICES);
  #taskTypes = new CappedLabels(MAX_UNROUTED_TASK_TYPES);

  constructor() {
    this.registry = new client.Registry();
    const registers = [this.registry];
    this.samplesIngested = new GuardedCounter({
      name: "telemetry_samples_ingested_total",
      help: "Samples read from devices (or posted) and accepted into a hub queue",
      labelNames: ["pipeline", "device"],
      registers,
    }, { device: (d) => this.deviceLabel(d) });
    this.samplesDropped = new client.Counter({
      name: "telemetry_samples_dropped_total",
      help: "Samples dropped, by reason (queue_full_oldest, queue_full_newest, closed, " +
        "broker_unavailable, unencodable)",
      labelNames: ["pipeline", "reason"],
      registers,
    });
    this.samplesProcessed = new client.Counter({
      name: "telemetry_samples_processed_total",
      help: "Samples in tasks that completed every handler",
      labelNames: ["pipeline"],
      registers,
    });
    this.samplesRefused = new client.Counter({
      name: "telemetry_samples_refused_total",
      help: "Samples refused where they entered the hub (invalid content), by source " +
        "(device, http)",
      labelNames: ["pipeline", "source"],
      registers,
    });
    this.samplesQuarantined = new client.Counter({
      name: "telemetry_samples_quarantined_total",
      help: "Accepted samples dead-lettered alone because a handler could never take them " +
        "(or, in a foreign task, that were not valid samples)",
      labelNames: ["pipeline"],
      registers,
    });
    this.tasksEnqueued = new client.Counter({
      name: "telemetry_tasks_enqueued_total",
      help: "Tasks the gateway handed to the broker",
      labelNames: ["pipeline", "type"],
      registers,
    });
    // A foreign producer's task may have any type: unrouted ones are capped.
    this.tasks = new GuardedCounter({
      name: "telemetry_tasks_total",
      help: "Task attempts settled, by outcome (completed, retried, dead_lettered, released)",
      labelNames: ["pipeline", "type", "outcome"],
      registers,
    }, { type: (t) => this.#taskTypes.label(t) });
    this.taskDuration = new client.Histogram({
      name: "telemetry_task_duration_seconds",
      help: "Time one handler spent on one task",
      labelNames: ["pipeline", "handler"],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.sampleLatency = new client.Histogram({
      name: "telemetry_sample_latency_seconds",
      help: "Sample timestamp to task completion (up to 16 samples observed per task)",
      labelNames: ["pipeline"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const probes = this.#depthProbes;
    this.queueDepth = new client.Gauge({
      name: "telemetry_queue_depth",
      help: "Items waiting: hub (samples), broker, inflight, delayed and dead_letter (tasks)",
      // The broker's queues are shared by every process and pipeline using that broker: the
      // broker label lets a fleet's dashboard show each once (max by (broker, queue)).
      labelNames: ["pipeline", "broker", "queue"],
      registers,
      async collect() {
        await Promise.all(probes.map((p) => p()));
      },
    });
    this.deviceUp = new client.Gauge({
      name: "telemetry_device_up",
      help: "1 when the device answers, 0 when it is down",
      labelNames: ["device"],
      registers,
    });
    this.deviceReadErrors = new client.Counter({
      name: "telemetry_device_read_errors_total",
      help: "Failed reads and connection errors per device",
      labelNames: ["device"],
      registers,
    });
    this.deviceRestarts = new client.Counter({
      name: "telemetry_device_restarts_total",
      help: "Times a device plugin was started again after failing",
      labelNames: ["device"],
      registers,
    });
    this.buildInfo = new client.Gauge({
      name: "telemetry_build_info",
      help: "Always 1: the version of TelemetryHub and of Deno this process runs",
      labelNames: ["version", "deno"],
      registers,
    });
    this.httpRequests = new client.Counter({
      name: "telemetry_http_requests_total",
      help: "HTTP requests served, by route and status",
      labelNames: ["route", "status"],
      registers,
    });
  }

  /**
   * Sets the device cap and the configured devices (which always keep their
   * own label). Devices admitted earlier keep theirs: their series exist.
   */
  configure({ devices, maxDevices, onOverflow }: DeviceLabelOptions): void {
    this.#devices.setKnown(devices);
    this.#devices.max = maxDevices;
    this.#devices.onOverflow = onOverflow;
  }

  /**
   * The `device` label value of a device name that may come from request
   * data: sanitized by {@link labelValue}; configured devices and the first
   * `maxDevices` others keep their name, later ones share
   * {@link OVERFLOW_LABEL} (and the first of them is reported once).
   */
  deviceLabel(device: string): string {
    return this.#devices.label(device);
  }

  /**
   * Creates at 0 the series of a pipeline's hub: samples read from each of
   * its devices, dropped for each reason and tasks enqueued, so that
   * dashboards show 0 rather than no data before the first event.
   */
  zeroHub(pipeline: string, taskType: string): void {
    this.#taskTypes.addKnown(taskType);
    for (const reason of DROP_REASONS) this.samplesDropped.labels(pipeline, reason).inc(0);
    for (const source of ["device", "http"]) this.samplesRefused.labels(pipeline, source).inc(0);
    this.tasksEnqueued.labels(pipeline, taskType).inc(0);
  }

  /** Creates at 0 the series of a pipeline's workers for each task type it routes. */
  zeroProcessor(pipeline: string, taskTypes: Iterable<string>): void {
    this.samplesProcessed.labels(pipeline).inc(0);
    this.samplesQuarantined.labels(pipeline).inc(0);
    for (const type of taskTypes) {
      this.#taskTypes.addKnown(type);
      for (const outcome of TASK_OUTCOMES) this.tasks.labels(pipeline, type, outcome).inc(0);
    }
  }

  /** Creates at 0 the series of one configured device of a pipeline. */
  zeroDevice(pipeline: string, device: string): void {
    const label = this.deviceLabel(device);
    this.samplesIngested.labels(pipeline, label).inc(0);
    this.deviceUp.labels(label).set(0);
    this.deviceReadErrors.labels(label).inc(0);
    this.deviceRestarts.labels(label).inc(0);
  }

  /** The live totals of a pipeline (created on first use). */
  totals(pipeline: string): PipelineTotals {
    let t = this.#totals.get(pipeline);
    if (!t) {
      t = emptyTotals();
      this.#totals.set(pipeline, t);
    }
    return t;
  }

  /** Sum of every pipeline's totals. */
  grandTotals(): PipelineTotals {
    const sum = emptyTotals();
    for (const t of this.#totals.values()) {
      for (const k of Object.keys(sum) as (keyof PipelineTotals)[]) sum[k] += t[k];
    }
    return sum;
  }

  /** Registers a function that refreshes `telemetry_queue_depth` before each scrape. */
  addDepthProbe(probe: () => Promise<void> | void): () => void {
    this.#depthProbes.push(probe);
    return () => {
      const i = this.#depthProbes.indexOf(probe);
      if (i >= 0) this.#depthProbes.splice(i, 1);
    };
  }

  /**
   * Adds prom-client's default process metrics (CPU, memory, event loop
   * lag…). Done by the entry point only: they watch the event loop.
   */
  enableDefaultMetrics(): void {
    client.collectDefaultMetrics({ register: this.registry });
  }

  /**
   * A counter child for a hot path: `inc()` adds to a plain number, and the
   * total reaches prom-client (which hashes label values on every call) at
   * the next {@link metrics} or {@link flush}. Cached per label values.
   */
  fastCounter<L extends string>(counter: client.Counter<L>, ...values: string[]): FastCounter {
    let id = this.#counterIds.get(counter);
    if (id === undefined) this.#counterIds.set(counter, id = this.#counterIds.size);
    const key = `${id}\u0000${values.join("\u0000")}`;
    let fast = this.#fast.get(key);
    if (!fast) {
      if (this.#fast.size > 50_000) this.flush(); // label churn: keep memory bounded
      const child = counter.labels(...values);
      const entry = { pending: 0, child };
      fast = { inc: (n = 1) => void (entry.pending += n), entry };
      this.#fast.set(key, fast);
    }
    return fast;
  }

  /** Hands pending fast-counter increments to prom-client. */
  flush(): void {
    for (const { entry } of this.#fast.values()) {
      if (entry.pending !== 0) {
        entry.child.inc(entry.pending);
        entry.pending = 0;
      }
    }
    if (this.#fast.size > 50_000) this.#fast.clear();
  }

  /** The {@link PluginMetrics} of one component, on this registry. */
  pluginMetrics(kind: PluginKind, component: string): PluginMetrics {
    return pluginMetrics(this.registry, kind, component, (device) => this.deviceLabel(device));
  }

  /** Prometheus text exposition. */
  metrics(): Promise<string> {
    this.flush();
    return this.registry.metrics();
  }
}

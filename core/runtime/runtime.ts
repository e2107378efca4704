/**
 * The runtime: turns a validated configuration into running components for
 * a role (`all`, `hub`, `processor`), and stops them so that nothing
 * accepted is lost.
 *
 * @module
 */
import { type Clock, settledOrAborted, systemClock } from "../clock.ts";
import type { ResolvedConfig, Role } from "../config/schema.ts";
import { errorMessage } from "../errors.ts";
import { createEventBus, type EventBus } from "../events.ts";
import type { Logger } from "../log.ts";
import type { BrokerDepth, BrokerInstance, HandlerInstance } from "../plugin.ts";
import { type Random, seededRandom } from "../random.ts";
import type { PluginRegistry } from "../registry.ts";
import { type Sample, SampleStamper } from "../sample.ts";
import type { DeviceStatus } from "./devices.ts";
import { OVERFLOW_LABEL, type PipelineTotals, RuntimeMetrics } from "./metrics.ts";
import { Tap } from "./tap.ts";
import { Assembly, type PipelineRuntime, startPipeline, StartupError } from "./_assembly.ts";
import { ingestSamples } from "./_ingest.ts";
import { type PipelineRates, probe, RateWindow, type ReadinessCheck } from "./_readiness.ts";
import { planReload, type ReloadReport } from "./_reload.ts";

export {
  type PipelineRates,
  type PipelineRuntime,
  type ReadinessCheck,
  type ReloadReport,
  StartupError,
};

/** What the runtime needs of a loaded configuration. */
export interface RuntimeConfig {
  config: ResolvedConfig;
  registry: PluginRegistry;
}

/** Options of {@link Runtime.create}. */
export interface RuntimeOptions {
  /** Overrides `role:` of the file. */
  role?: Role;
  logger: Logger;
  clock?: Clock;
  /** Seed of the runtime's randomness (jitter); random when absent. */
  seed?: number;
  /** Directory plugins resolve relative paths against. */
  baseDir?: string;
  /** Directory relative data paths resolve against (default: the working directory). */
  dataDir?: string;
}

/** A broker's queue depths, as the console's overview shows them. */
export interface BrokerReport {
  name: string;
  /** Pipelines whose tasks it holds. */
  pipelines: string[];
  shared: boolean;
  durable: boolean;
  /** `null` when the broker did not answer (see `error`). */
  depth: BrokerDepth | null;
  error?: string;
}

/** The one-line outcome printed on stop. */
export interface RunSummary extends PipelineTotals {
  uptime_ms: number;
  /** Tasks left in an in-process broker after the grace period (lost with the process). */
  tasks_abandoned: number;
}

/** Formats a {@link RunSummary} as one line. */
export function formatSummary(s: RunSummary): string {
  const parts = [
    `${s.samples_read} samples read`,
    `${s.tasks_completed} tasks completed`,
    `${s.tasks_retried} retried`,
    `${s.tasks_dead_lettered} dead-lettered`,
    `${s.samples_dropped} samples dropped`,
  ];
  if (s.tasks_released > 0) parts.push(`${s.tasks_released} tasks released`);
  if (s.tasks_abandoned > 0) parts.push(`${s.tasks_abandoned} tasks abandoned`);
  return `Stopped after ${(s.uptime_ms / 1000).toFixed(1)}s: ${parts.join(", ")}`;
}

/** A running TelemetryHub process. */
export class Runtime {
  readonly role: Role;
  #config: ResolvedConfig;
  readonly metrics = new RuntimeMetrics();
  readonly pipelines = new Map<string, PipelineRuntime>();
  readonly brokers = new Map<string, BrokerInstance>();
  readonly handlers = new Map<string, HandlerInstance>();
  /** When the runtime was created. */
  readonly createdAt: number;
  #startedAt: number | undefined;
  /** The event bus shared by this runtime's plugins. */
  readonly events: EventBus;
  /** Live sample taps (admin API). */
  readonly tap: Tap;
  /** Gives samples that arrive without `ts` their identity, for every way in. */
  readonly stamper = new SampleStamper();
  #registry: PluginRegistry;
  #logger: Logger;
  #clock: Clock;
  #random: Random;
  #baseDir: string;
  #abort = new AbortController();
  #assembly: Assembly;
  #rateTimer: ReturnType<typeof setInterval> | undefined;
  #rateWindow = new RateWindow();
  #deviceRateWindow = new RateWindow();
  #state: "created" | "running" | "stopping" | "stopped" = "created";
  #stopped: Promise<RunSummary> | undefined;

  private constructor(loaded: RuntimeConfig, options: RuntimeOptions) {
    this.#config = loaded.config;
    this.#registry = loaded.registry;
    this.role = options.role ?? loaded.config.role;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.#random = seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.#baseDir = options.baseDir ?? Deno.cwd();
    this.createdAt = this.#clock.now();
    this.events = createEventBus(this.#logger);
    this.tap = new Tap(() => this.#clock.now());
    this.#configureMetrics();
    this.#assembly = new Assembly({
      role: this.role,
      config: () => this.#config,
      registry: () => this.#registry,
      logger: this.#logger,
      clock: this.#clock,
      random: this.#random,
      baseDir: this.#baseDir,
      dataDir: options.dataDir ?? Deno.cwd(),
      signal: this.#abort.signal,
      events: this.events,
      metrics: this.metrics,
      tap: this.tap,
      stamper: this.stamper,
      brokers: this.brokers,
      handlers: this.handlers,
      pipelines: this.pipelines,
    });
  }

  /** Configured devices keep their own series; request-derived ones are capped. */
  #configureMetrics(): void {
    this.metrics.configure({
      devices: Object.keys(this.#config.devices),
      maxDevices: this.#config.metrics.max_devices,
      onOverflow: (device, max) =>
        this.#logger.warn(
          `More than ${max} devices not in the configuration: further ones are counted under ` +
            `device="${OVERFLOW_LABEL}" in metrics (raise metrics.max_devices to see them)`,
          { device, max_devices: max },
        ),
    });
  }

  /**
   * Creates every component the role needs. Throws {@link StartupError}
   * naming the component and its plugin module when one cannot be created;
   * whatever was created is closed again.
   */
  static async create(loaded: RuntimeConfig, options: RuntimeOptions): Promise<Runtime> {
    const runtime = new Runtime(loaded, options);
    try {
      await runtime.#assembly.build();
    } catch (error) {
      await runtime.#closeAll();
      throw error;
    }
    return runtime;
  }

  /** The configuration in force (replaced by {@link reload}). */
  get config(): ResolvedConfig {
    return this.#config;
  }

  get logger(): Logger {
    return this.#logger;
  }

  get clock(): Clock {
    return this.#clock;
  }

  get state(): "created" | "running" | "stopping" | "stopped" {
    return this.#state;
  }

  get runsHub(): boolean {
    return this.role !== "processor";
  }

  get runsProcessor(): boolean {
    return this.role !== "hub";
  }

  /** Starts devices, gateways and workers. */
  /**
   * When processing started ({@link start}), or creation while it has not:
   * uptime and the stop summary count from here, not from start-up work.
   */
  get startedAt(): number {
    return this.#startedAt ?? this.createdAt;
  }

  start(): void {
    if (this.#state !== "created") return;
    this.#state = "running";
    this.#startedAt = this.#clock.now();
    this.#rateTimer = setInterval(() => {
      this.rates();
      this.deviceRates();
    }, 1000);
    for (const pr of this.pipelines.values()) startPipeline(pr);
    this.#logger.info("Started", {
      role: this.role,
      pipelines: [...this.pipelines.keys()],
      devices: [...this.pipelines.values()].reduce((n, p) => n + p.devices.length, 0),
    });
  }

  /** Device states of this process. */
  devices(): DeviceStatus[] {
    return [...this.pipelines.values()].flatMap((p) => p.devices.map((d) => d.status));
  }

  /** The pipeline that owns a device (hub roles only). */
  pipelineOf(device: string): PipelineRuntime | undefined {
    return this.#assembly.deviceOwner.get(device);
  }

  /**
   * Hands samples (from the REST gateway, say) to a pipeline's hub queue.
   * The samples must have passed the edge (`admitSample()` with
   * {@link stamper}). Returns `"full"` without taking any when the queue is
   * full with `overflow: block` (the caller answers 503); drop policies apply
   * as for devices. Otherwise returns a promise that settles like a durable
   * device emit (see `DeviceIO.emit`): once a durable broker holds the
   * samples, or once they are queued for one that is not; it rejects when
   * they will not be kept. Throws when the pipeline runs no hub in this process.
   */
  ingest(pipeline: string, samples: Sample[]): Promise<void> | "full" {
    const pr = this.pipelines.get(pipeline);
    if (!pr?.queue) throw new Error(`Pipeline "${pipeline}" does not run a hub in this process`);
    return ingestSamples({
      pipeline,
      queue: pr.queue,
      durable: pr.broker.durable === true,
      metrics: this.metrics,
      tap: this.tap,
    }, samples);
  }

  /** Readiness of every broker, handler and pipeline, each with a reason when not ready. */
  async readiness(timeoutMs = 2000): Promise<ReadinessCheck[]> {
    const checks: Promise<ReadinessCheck>[] = [];
    for (const [name, b] of this.brokers) {
      checks.push(probe(`broker:${name}`, () => b.health(), timeoutMs));
    }
    for (const [name, h] of this.handlers) {
      if (h.health) checks.push(probe(`handler:${name}`, () => h.health!(), timeoutMs));
    }
    const state = this.#state;
    for (const name of this.pipelines.keys()) {
      checks.push(Promise.resolve(
        state === "running"
          ? { name: `pipeline:${name}`, ready: true }
          : { name: `pipeline:${name}`, ready: false, reason: `Runtime is ${state}` },
      ));
    }
    return await Promise.all(checks);
  }

  /**
   * Queue depths of every broker with the pipelines it serves; `depth` is
   * `null` and `error` says why when the broker does not answer within
   * `timeoutMs`.
   */
  async brokerDepths(timeoutMs = 2000): Promise<BrokerReport[]> {
    return await Promise.all([...this.brokers].map(async ([name, broker]) => {
      let depth: BrokerDepth | null = null;
      const check = await probe(name, async () => {
        depth = await broker.depth();
      }, timeoutMs);
      const pipelines = [...this.pipelines.values()].filter((p) => p.brokerName === name);
      return {
        name,
        pipelines: pipelines.map((p) => p.name),
        shared: broker.shared,
        durable: broker.durable === true,
        depth,
        ...(check.reason === undefined ? {} : { error: check.reason }),
      };
    }));
  }

  /** Samples and tasks per second per pipeline over the last few seconds. */
  rates(): Record<string, PipelineRates> {
    const now = this.#clock.now();
    const out: Record<string, PipelineRates> = {};
    for (const name of this.pipelines.keys()) {
      const t = this.metrics.totals(name);
      const [samples_read = 0, samples_processed = 0, tasks = 0] = this.#rateWindow.rates(
        name,
        [t.samples_read, t.samples_processed, t.tasks_completed],
        now,
      );
      out[name] = { samples_read, samples_processed, tasks };
    }
    return out;
  }

  /** Samples per second of each device of this process over the last few seconds. */
  deviceRates(): Record<string, number> {
    const now = this.#clock.now();
    const out: Record<string, number> = {};
    for (const d of this.devices()) {
      out[d.name] = this.#deviceRateWindow.rates(d.name, [d.samples], now)[0]!;
    }
    this.#deviceRateWindow.retain(new Set(Object.keys(out)));
    return out;
  }

  /** Aborts when the runtime stops (for components that wait). */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /**
   * Stops in order: devices, then the hub queue drains through the gateway
   * into the broker, then workers finish (draining an in-process broker),
   * handlers flush, brokers close. Work still running when `grace` ends is
   * released back to the broker. Idempotent.
   */
  stop(): Promise<RunSummary> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<RunSummary> {
    this.#state = "stopping";
    clearInterval(this.#rateTimer);
    const grace = this.config.shutdown.grace;
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new DOMException("Grace period over", "TimeoutError")),
      grace,
    );
    try {
      await this.#stopPipelines(
        [...this.pipelines.values()],
        deadline.signal,
        (p) => !p.broker.shared && this.runsHub,
      );
      for (const [name, h] of this.handlers) {
        try {
          await h.flush?.();
        } catch (error) {
          this.#logger.error("Handler flush failed", { handler: name, error: errorMessage(error) });
        }
      }
    } finally {
      clearTimeout(timer);
    }
    let abandoned = 0;
    for (const [name, broker] of this.brokers) {
      if (broker.shared) continue;
      try {
        const d = await broker.depth();
        const left = d.queued + d.delayed + d.inflight;
        if (left > 0) {
          abandoned += left;
          this.#logger.warn("Tasks left in the in-process broker are lost", {
            broker: name,
            tasks: left,
          });
        }
      } catch { /* reported by close below */ }
    }
    this.#abort.abort();
    await this.#closeAll();
    this.#state = "stopped";
    return {
      ...this.metrics.grandTotals(),
      uptime_ms: this.#clock.now() - this.startedAt,
      tasks_abandoned: abandoned,
    };
  }

  /**
   * Stops pipelines: devices, then the hub queue drains through the gateway
   * into the broker, then workers finish what they hold (and keep draining
   * the broker where `drain` says so), all bounded by `deadline`.
   */
  async #stopPipelines(
    pipelines: PipelineRuntime[],
    deadline: AbortSignal,
    drain: (p: PipelineRuntime) => boolean,
  ): Promise<void> {
    const devicesStopped = await settledOrAborted(
      Promise.all(pipelines.flatMap((p) => p.devices.map((d) => d.stop()))),
      deadline,
    );
    if (!devicesStopped) {
      this.#logger.error("Devices still running after the grace period; not waiting");
    }
    for (const p of pipelines) p.queue?.close();
    await Promise.all(pipelines.map((p) => p.gateway?.stop(deadline)));
    await Promise.all(pipelines.map((p) => p.pool?.stop({ drain: drain(p), deadline })));
  }

  /**
   * Applies a new configuration: pipelines whose wiring (their own settings,
   * devices, broker or handlers) is unchanged keep running untouched; the
   * others stop gracefully (in-flight tasks finish, queued tasks stay in a
   * broker that is kept) and start again with the new settings. Brokers and
   * handlers nothing uses any more are flushed and closed. `role`, `admin`,
   * `log` and `shutdown` take effect on the next start only.
   */
  async reload(loaded: RuntimeConfig): Promise<ReloadReport> {
    if (this.#state !== "running") {
      throw new Error(`Cannot reload a runtime that is ${this.#state}`);
    }
    const old = this.#config;
    // A plugin whose module was imported afresh (its file changed) has a new definition.
    const changedCode = new Set(
      loaded.registry.list()
        .filter((p) => this.#registry.get(p.definition.kind, p.definition.name) !== p.definition)
        .map((p) => `${p.definition.kind}:${p.definition.name}`),
    );
    const { restarted, unchanged, removed, brokerKept, handlerKept } = planReload(
      old,
      loaded.config,
      changedCode,
    );
    const stopping = [...removed, ...restarted]
      .map((n) => this.pipelines.get(n))
      .filter((p): p is PipelineRuntime => p !== undefined);
    for (const p of stopping) {
      const router = this.#assembly.routers.get(p.brokerName);
      if (restarted.includes(p.name)) router?.pause(p.name);
      else router?.delete(p.name);
    }
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), old.shutdown.grace);
    try {
      // A broker that goes away takes its tasks with it if it is in-process: drain it.
      await this.#stopPipelines(
        stopping,
        deadline.signal,
        (p) => !p.broker.shared && !brokerKept(p.brokerName) && this.runsHub,
      );
    } finally {
      clearTimeout(timer);
    }
    for (const p of stopping) {
      p.removeDepthProbe?.();
      this.pipelines.delete(p.name);
      for (const d of p.devices) this.#assembly.deviceOwner.delete(d.status.name);
      this.#assembly.runners = this.#assembly.runners.filter((r) => !p.devices.includes(r));
    }
    for (const [name, h] of [...this.handlers]) {
      if (handlerKept(name)) continue;
      try {
        await h.flush?.();
        await h.close?.();
      } catch (error) {
        this.#logger.warn("Closing handler failed", { handler: name, error: errorMessage(error) });
      }
      this.#assembly.componentAbort.get(`handler:${name}`)?.abort();
      this.handlers.delete(name);
    }
    for (const [name, b] of [...this.brokers]) {
      if (brokerKept(name)) continue;
      await b.close().catch((error) =>
        this.#logger.warn("Closing broker failed", { broker: name, error: errorMessage(error) })
      );
      this.#assembly.componentAbort.get(`broker:${name}`)?.abort();
      this.brokers.delete(name);
      this.#assembly.routers.delete(name);
    }
    this.#config = loaded.config;
    this.#registry = loaded.registry;
    this.#configureMetrics();
    for (const name of restarted) {
      startPipeline(await this.#assembly.buildPipeline(name));
    }
    this.#logger.info("Reloaded", { restarted, unchanged, removed });
    return { restarted, unchanged, removed };
  }

  async #closeAll(): Promise<void> {
    const close = async (kind: string, name: string, fn: (() => Promise<void>) | undefined) => {
      try {
        await fn?.();
      } catch (error) {
        this.#logger.warn(`Closing ${kind} failed`, { [kind]: name, error: errorMessage(error) });
      }
    };
    if (this.#state === "created") {
      // Startup failed: devices never ran, so close their instances here.
      for (const d of this.#assembly.runners) await close("device", d.status.name, () => d.close());
    }
    for (const [name, h] of this.handlers) await close("handler", name, h.close?.bind(h));
    for (const [name, b] of this.brokers) await close("broker", name, b.close.bind(b));
  }
}

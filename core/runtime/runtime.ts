/**
 * The runtime: turns a validated configuration into running components for
 * a role (`all`, `hub`, `processor`), and stops them so that nothing
 * accepted is lost.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import type { ResolvedConfig, Role } from "../config/schema.ts";
import { errorMessage } from "../errors.ts";
import { createEventBus, type EventBus } from "../events.ts";
import type { Logger } from "../log.ts";
import type { BrokerInstance, HandlerInstance } from "../plugin.ts";
import { type Random, seededRandom } from "../random.ts";
import type { PluginRegistry } from "../registry.ts";
import { type Sample, SampleStamper } from "../sample.ts";
import type { DeviceStatus } from "./devices.ts";
import { RuntimeMetrics } from "./metrics.ts";
import { deviceLabelOptions } from "../_metric_labels.ts";
import { Tap } from "./tap.ts";
import { Assembly, type PipelineRuntime, startPipeline, StartupError } from "./_assembly.ts";
import { ingestSamples } from "./_ingest.ts";
import {
  type BrokerReport,
  brokerReports,
  deviceRates,
  type PipelineRates,
  pipelineRates,
  RateWindow,
  type ReadinessCheck,
  readinessChecks,
} from "./_readiness.ts";
import { planReload, type ReloadReport } from "./_reload.ts";
import type { ThreadPool } from "./threads.ts";
import {
  abandonedTasks,
  closeComponents,
  formatSummary,
  type RunSummary,
  stopPipelines,
} from "./_shutdown.ts";
import { startThreadPool, threadPlan, type ThreadSpec, threadSpec } from "./_thread_plan.ts";

export {
  type BrokerReport,
  formatSummary,
  type PipelineRates,
  type PipelineRuntime,
  type ReadinessCheck,
  type ReloadReport,
  type RunSummary,
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
  /**
   * The program's thread module (it calls `serveThread()`): with it, `threads:`
   * runs handler chains in that many isolates; without it, everything runs on
   * this one (as `threads: 1`). Threads import the `plugins:` modules again,
   * resolved against `baseDir` as the loader resolved them.
   */
  threadModule?: URL;
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
  #seed: number;
  #dataDir: string;
  #threadModule: URL | undefined;
  #threads: ThreadPool | undefined;
  /** What the running threads were started with, to tell whether a reload changes it. */
  #threadKey = "";
  #stopped: Promise<RunSummary> | undefined;

  private constructor(loaded: RuntimeConfig, options: RuntimeOptions) {
    this.#config = loaded.config;
    this.#registry = loaded.registry;
    this.role = options.role ?? loaded.config.role;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.#seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.#random = seededRandom(this.#seed);
    this.#dataDir = options.dataDir ?? Deno.cwd();
    this.#threadModule = options.threadModule;
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
      dataDir: this.#dataDir,
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
    this.metrics.configure(deviceLabelOptions(this.#config, this.#logger));
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
    this.#startThreads();
    this.#logger.info("Started", {
      role: this.role,
      pipelines: [...this.pipelines.keys()],
      devices: [...this.pipelines.values()].reduce((n, p) => n + p.devices.length, 0),
      ...(this.#threads ? { threads: this.#threads.count + 1 } : {}),
    });
  }

  /**
   * What thread isolates would run under the configuration in force: the
   * start config (its pipelines only those a thread may run) and a key that
   * changes when any of it does.
   */
  #threadSpec(): ThreadSpec {
    const plan = threadPlan({
      threads: this.#config.threads,
      possible: this.#threadModule !== undefined && this.runsProcessor,
      pipelines: this.pipelines.values(),
      config: this.#config,
      handlers: this.handlers,
    });
    return threadSpec(plan, this.#config, this.#registry);
  }

  /** Starts the thread isolates `threads:` asks for, when there is something for them to run. */
  #startThreads(): void {
    const spec = this.#threadSpec();
    this.#threads = startThreadPool(spec, {
      module: this.#threadModule,
      baseDir: this.#baseDir,
      dataDir: this.#dataDir,
      seed: this.#seed,
      logger: this.#logger,
      metrics: this.metrics,
    });
    this.#threadKey = this.#threads ? spec.key : "";
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
    return await readinessChecks({
      brokers: this.brokers,
      handlers: this.handlers,
      pipelines: this.pipelines.keys(),
      state: this.#state,
      threads: this.#threads?.readiness(timeoutMs),
    }, timeoutMs);
  }

  /**
   * Queue depths of every broker with the pipelines it serves; `depth` is
   * `null` and `error` says why when the broker does not answer within
   * `timeoutMs`.
   */
  brokerDepths(timeoutMs = 2000): Promise<BrokerReport[]> {
    return brokerReports(this.brokers, this.pipelines.values(), timeoutMs);
  }

  /** Samples and tasks per second per pipeline over the last few seconds. */
  rates(): Record<string, PipelineRates> {
    const totals = (name: string) => this.metrics.combinedTotals(name);
    return pipelineRates(this.#rateWindow, this.pipelines.keys(), totals, this.#clock.now());
  }

  /** Samples per second of each device of this process over the last few seconds. */
  deviceRates(): Record<string, number> {
    return deviceRates(this.#deviceRateWindow, this.devices(), this.#clock.now());
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
    // Threads run pipelines on shared brokers only: they stop beside this isolate.
    const threadsStopped = this.#threads?.stop(grace);
    try {
      await stopPipelines(
        this.#logger,
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
      await threadsStopped;
    } finally {
      clearTimeout(timer);
    }
    const abandoned = await abandonedTasks(this.brokers, this.#logger);
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
      await stopPipelines(
        this.#logger,
        stopping,
        deadline.signal,
        (p) => !p.broker.shared && !brokerKept(p.brokerName) && this.runsHub,
      );
    } finally {
      clearTimeout(timer);
    }
    await this.#assembly.dismantle(stopping, { handlerKept, brokerKept });
    this.#config = loaded.config;
    this.#registry = loaded.registry;
    this.#configureMetrics();
    for (const name of restarted) {
      startPipeline(await this.#assembly.buildPipeline(name));
    }
    await this.#reloadThreads();
    this.#logger.info("Reloaded", { restarted, unchanged, removed });
    return { restarted, unchanged, removed };
  }

  /**
   * Starts the threads again when what they run changed (their pipelines,
   * the components those use, their number); otherwise they keep running.
   */
  async #reloadThreads(): Promise<void> {
    if (this.#threadSpec().key === this.#threadKey) return;
    // The old threads' counts stay in the totals (the pool keeps them once stopped).
    await this.#threads?.stop(this.#config.shutdown.grace);
    this.#threads = undefined;
    this.#startThreads();
  }

  async #closeAll(): Promise<void> {
    // After a failed startup devices never ran, so their instances are closed here.
    const devices = this.#state === "created" ? this.#assembly.runners : [];
    await closeComponents(this.#logger, devices, this.handlers, this.brokers);
  }
}

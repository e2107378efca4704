/**
 * The runtime: turns a validated configuration into running components for
 * a role (`all`, `hub`, `processor`), and stops them so that nothing
 * accepted is lost.
 *
 * @module
 */
import type { RetryPolicy } from "../backoff.ts";
import { type Clock, settledOrAborted, systemClock } from "../clock.ts";
import type { PipelineConfig, ResolvedConfig, Role } from "../config/schema.ts";
import { errorMessage } from "../errors.ts";
import { createEventBus, type EventBus } from "../events.ts";
import type { Logger } from "../log.ts";
import type {
  BrokerInstance,
  HandlerInstance,
  InstanceOf,
  PluginContext,
  PluginKind,
} from "../plugin.ts";
import { type Random, seededRandom, seedFrom } from "../random.ts";
import type { PluginRegistry } from "../registry.ts";
import { type Sample, SampleStamper } from "../sample.ts";
import type { Priority } from "../schema.ts";
import { DeviceRunner, type DeviceStatus } from "./devices.ts";
import { Gateway } from "./gateway.ts";
import { type Ack, HubQueue } from "./hub_queue.ts";
import { OVERFLOW_LABEL, type PipelineTotals, RuntimeMetrics } from "./metrics.ts";
import { Tap } from "./tap.ts";
import { BrokerRouter, type ChainLink, WorkerPool } from "./workers.ts";

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
}

/** A component that failed to start, named for the user. */
export class StartupError extends Error {
  override name = "StartupError";
}

/** The one-line outcome printed on stop. */
export interface RunSummary extends PipelineTotals {
  uptime_ms: number;
  /** Tasks left in an in-process broker after the grace period (lost with the process). */
  tasks_abandoned: number;
}

/** One pipeline's running parts in this process. */
export interface PipelineRuntime {
  name: string;
  brokerName: string;
  broker: BrokerInstance;
  queue?: HubQueue;
  gateway?: Gateway;
  pool?: WorkerPool;
  devices: DeviceRunner[];
  handlers: string[];
  removeDepthProbe?: () => void;
}

/** Every handler a pipeline's chains use. */
function handlerNames(p: PipelineConfig): string[] {
  return [...new Set([...p.handlers, ...Object.values(p.routes).flat()])];
}

/** What must stay the same for a pipeline to keep running across a reload. */
function fingerprint(config: ResolvedConfig, name: string): string {
  const p = config.pipelines[name]!;
  return JSON.stringify({
    pipeline: p,
    devices: p.from.map((d) => config.devices[d]),
    broker: config.brokers[p.via],
    handlers: handlerNames(p).map((h) => config.handlers[h]),
  });
}

/** What a reload changed. */
export interface ReloadReport {
  /** Pipelines stopped and started again (or started, when new). */
  restarted: string[];
  unchanged: string[];
  removed: string[];
}

/** One line of a readiness report. */
export interface ReadinessCheck {
  name: string;
  ready: boolean;
  reason?: string;
}

const RATE_WINDOW_MS = 10_000;
const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * Pushes a batch whose producer wants to know when it is safe: with a
 * durable broker once the broker holds it (the gateway acknowledges), else
 * once it is queued.
 */
function pushAcked(
  queue: HubQueue,
  samples: Sample[],
  ack: Ack | undefined,
  durable: boolean,
): void | Promise<void> {
  if (!ack || durable) return queue.push(samples, ack);
  const pushed = queue.push(samples);
  if (pushed) pushed.then(ack.resolve, ack.reject);
  else if (queue.closed) ack.reject(new Error("The hub queue is closed: the pipeline is stopping"));
  else ack.resolve();
  return pushed;
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
  readonly startedAt: number;
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
  #deviceOwner = new Map<string, PipelineRuntime>();
  #runners: DeviceRunner[] = [];
  #componentAbort = new Map<string, AbortController>();
  #routers = new Map<string, BrokerRouter>();
  #rateTimer: ReturnType<typeof setInterval> | undefined;
  #rateHistory = new Map<
    string,
    Array<{ at: number; read: number; processed: number; tasks: number }>
  >();
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
    this.startedAt = this.#clock.now();
    this.events = createEventBus(this.#logger);
    this.tap = new Tap(() => this.#clock.now());
    this.#configureMetrics();
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
      await runtime.#build();
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

  #context(kind: PluginKind, name: string): PluginContext {
    const abort = new AbortController();
    this.#componentAbort.get(`${kind}:${name}`)?.abort();
    this.#componentAbort.set(`${kind}:${name}`, abort);
    return {
      name,
      logger: this.#logger.child({ [kind]: name }),
      clock: this.#clock,
      random: seededRandom(seedFrom(`${kind}:${name}`)),
      signal: AbortSignal.any([abort.signal, this.#abort.signal]),
      baseDir: this.#baseDir,
      events: this.events,
      metrics: this.metrics.pluginMetrics(kind, name),
    };
  }

  async #instantiate<K extends PluginKind>(
    kind: K,
    name: string,
    block: { type: string; config: Record<string, unknown> },
  ): Promise<InstanceOf[K]> {
    const entry = this.#registry.entry(kind, block.type);
    if (!entry) {
      throw new StartupError(
        `Cannot start ${kind} "${name}": unknown ${kind} type "${block.type}"`,
      );
    }
    const from = entry.source === "builtin" ? "" : ` from "${entry.source}"`;
    try {
      const instance = await entry.definition.create(block.config, this.#context(kind, name));
      if (typeof instance !== "object" || instance === null) {
        throw new Error("create() returned no instance");
      }
      return instance as InstanceOf[K];
    } catch (error) {
      throw new StartupError(
        `Cannot start ${kind} "${name}" (plugin "${block.type}"${from}): ${errorMessage(error)}`,
        { cause: error },
      );
    }
  }

  async #build(): Promise<void> {
    const names = Object.keys(this.config.pipelines);
    if (names.length === 0) {
      throw new StartupError("Nothing to run: the configuration defines no pipelines");
    }
    for (const name of names) await this.#buildPipeline(name);
  }

  async #ensureBroker(name: string): Promise<BrokerInstance> {
    const existing = this.brokers.get(name);
    if (existing) return existing;
    const block = this.config.brokers[name]!;
    const broker = await this.#instantiate("broker", name, block);
    this.brokers.set(name, broker);
    const declared = this.#registry.get("broker", block.type)?.shared;
    if (declared !== undefined && declared !== broker.shared) {
      throw new StartupError(
        `Cannot start broker "${name}" (plugin "${block.type}"): its definition says ` +
          `shared: ${declared} but the instance it created says shared: ${broker.shared}`,
      );
    }
    // The configuration loader refuses this already when the plugin declares `shared`.
    if (this.role !== "all" && !broker.shared) {
      throw new StartupError(
        `Role "${this.role}" cannot use broker "${name}" (type "${block.type}"): it lives ` +
          `inside one process, so a separate hub and processor would never see each other's ` +
          `tasks. Split roles need a shared broker such as Redis; use role "all" with the ` +
          `in-process broker`,
      );
    }
    return broker;
  }

  async #ensureHandler(name: string): Promise<HandlerInstance> {
    const existing = this.handlers.get(name);
    if (existing) return existing;
    const handler = await this.#instantiate("handler", name, this.config.handlers[name]!);
    this.handlers.set(name, handler);
    return handler;
  }

  async #buildPipeline(name: string): Promise<PipelineRuntime> {
    const p = this.config.pipelines[name]!;
    const broker = await this.#ensureBroker(p.via);
    if (this.runsProcessor) {
      for (const h of handlerNames(p)) await this.#ensureHandler(h);
    }
    const pr: PipelineRuntime = {
      name,
      brokerName: p.via,
      broker,
      devices: [],
      handlers: p.handlers,
    };
    if (this.runsHub) await this.#buildHub(pr);
    if (this.runsProcessor) this.#buildProcessor(pr);
    this.pipelines.set(name, pr);
    pr.removeDepthProbe = this.#addDepthProbe(pr);
    return pr;
  }

  async #buildHub(pr: PipelineRuntime): Promise<void> {
    const p = this.config.pipelines[pr.name]!;
    const totals = this.metrics.totals(pr.name);
    const dropped = this.metrics.samplesDropped;
    const queue = new HubQueue({
      capacity: p.hub_queue.capacity,
      overflow: p.hub_queue.overflow,
      onDrop: (count, reason) => {
        if (count <= 0) return;
        totals.samples_dropped += count;
        dropped.labels(pr.name, reason).inc(count);
      },
    });
    this.metrics.zeroHub(pr.name, p.task_type);
    const devicePriority = new Map<string, Priority>();
    for (const deviceName of p.from) {
      const block = this.config.devices[deviceName]!;
      if (block.priority && block.priority !== p.priority) {
        devicePriority.set(deviceName, block.priority);
      }
      const instance = await this.#instantiate("device", deviceName, block);
      const runner = new DeviceRunner({
        name: deviceName,
        type: block.type,
        pipeline: pr.name,
        instance,
        sink: (samples, ack) => {
          this.tap.offer(pr.name, samples);
          return pushAcked(queue, samples, ack, pr.broker.durable === true);
        },
        ...(block.tags ? { tags: block.tags } : {}),
        logger: this.#logger,
        clock: this.#clock,
        random: this.#random,
        metrics: this.metrics,
        stamper: this.stamper,
      });
      pr.devices.push(runner);
      this.#runners.push(runner);
      this.#deviceOwner.set(deviceName, pr);
    }
    pr.queue = queue;
    pr.gateway = new Gateway({
      pipeline: pr.name,
      taskType: p.task_type,
      priority: p.priority,
      devicePriority,
      maxSamples: p.batch.max_samples,
      maxWait: p.batch.max_wait,
      queue,
      broker: pr.broker,
      clock: this.#clock,
      logger: this.#logger,
      metrics: this.metrics,
    });
  }

  #buildProcessor(pr: PipelineRuntime): void {
    const p = this.config.pipelines[pr.name]!;
    const link = (name: string): ChainLink => ({ name, instance: this.handlers.get(name)! });
    const chains = new Map<string, ChainLink[]>();
    for (const [type, chain] of Object.entries(p.routes)) chains.set(type, chain.map(link));
    chains.set(p.task_type, p.handlers.map(link));
    this.metrics.zeroProcessor(pr.name, chains.keys());
    const retry: RetryPolicy = p.retry;
    let router = this.#routers.get(pr.brokerName);
    if (!router) this.#routers.set(pr.brokerName, router = new BrokerRouter());
    router.set(pr.name, chains, retry);
    pr.pool = new WorkerPool({
      pipeline: pr.name,
      router,
      broker: pr.broker,
      workers: p.workers,
      prefetch: p.prefetch,
      fallbackRetry: retry,
      clock: this.#clock,
      random: this.#random,
      logger: this.#logger,
      metrics: this.metrics,
      consumerPrefix: `${pr.name}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
    });
  }

  #addDepthProbe(pr: PipelineRuntime): () => void {
    const gauge = this.metrics.queueDepth;
    return this.metrics.addDepthProbe(async () => {
      if (pr.queue) gauge.labels(pr.name, "hub").set(pr.queue.size);
      try {
        const d = await pr.broker.depth();
        gauge.labels(pr.name, "broker").set(d.queued);
        gauge.labels(pr.name, "inflight").set(d.inflight);
        gauge.labels(pr.name, "delayed").set(d.delayed);
        gauge.labels(pr.name, "dead_letter").set(d.dead);
      } catch {
        // An unreachable broker shows in readiness, not as a scrape failure.
      }
    });
  }

  /** Starts devices, gateways and workers. */
  start(): void {
    if (this.#state !== "created") return;
    this.#state = "running";
    this.#rateTimer = setInterval(() => this.rates(), 1000);
    for (const pr of this.pipelines.values()) {
      pr.pool?.start();
      pr.gateway?.start();
      for (const d of pr.devices) d.start();
    }
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
    return this.#deviceOwner.get(device);
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
    if (pr.queue.wouldBlock(samples.length)) return "full";
    const totals = this.metrics.totals(pipeline);
    totals.samples_read += samples.length;
    // Device names come from request data: deviceLabel() sanitizes and caps them.
    const m = this.metrics;
    if (samples.length === 1) {
      m.fastCounter(m.samplesIngested, pipeline, m.deviceLabel(samples[0]!.device)).inc();
    } else {
      const perDevice = new Map<string, number>();
      for (const s of samples) perDevice.set(s.device, (perDevice.get(s.device) ?? 0) + 1);
      for (const [device, n] of perDevice) {
        m.fastCounter(m.samplesIngested, pipeline, m.deviceLabel(device)).inc(n);
      }
    }
    this.tap.offer(pipeline, samples);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    void pushAcked(pr.queue, samples, { resolve, reject }, pr.broker.durable === true);
    return promise;
  }

  /** Readiness of every broker, handler and pipeline, each with a reason when not ready. */
  async readiness(timeoutMs = 2000): Promise<ReadinessCheck[]> {
    const probe = async (name: string, fn: () => Promise<void>): Promise<ReadinessCheck> => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          fn(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`No answer within ${timeoutMs}ms`)),
              timeoutMs,
            );
          }),
        ]);
        return { name, ready: true };
      } catch (error) {
        return { name, ready: false, reason: errorMessage(error) };
      } finally {
        clearTimeout(timer);
      }
    };
    const checks: Promise<ReadinessCheck>[] = [];
    for (const [name, b] of this.brokers) checks.push(probe(`broker:${name}`, () => b.health()));
    for (const [name, h] of this.handlers) {
      if (h.health) checks.push(probe(`handler:${name}`, () => h.health!()));
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

  /** Samples and tasks per second per pipeline over the last few seconds. */
  rates(): Record<string, { samples_read: number; samples_processed: number; tasks: number }> {
    const now = this.#clock.now();
    const out: Record<string, { samples_read: number; samples_processed: number; tasks: number }> =
      {};
    for (const name of this.pipelines.keys()) {
      const t = this.metrics.totals(name);
      const current = {
        at: now,
        read: t.samples_read,
        processed: t.samples_processed,
        tasks: t.tasks_completed,
      };
      let history = this.#rateHistory.get(name);
      if (!history) this.#rateHistory.set(name, history = []);
      if (history.length === 0 || now - history.at(-1)!.at >= 1000) history.push(current);
      while (history.length > 2 && now - history[1]!.at >= RATE_WINDOW_MS) history.shift();
      const base = history[0]!;
      const seconds = (now - base.at) / 1000;
      out[name] = seconds <= 0 ? { samples_read: 0, samples_processed: 0, tasks: 0 } : {
        samples_read: round2((current.read - base.read) / seconds),
        samples_processed: round2((current.processed - base.processed) / seconds),
        tasks: round2((current.tasks - base.tasks) / seconds),
      };
    }
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
    const next = loaded.config;
    const names = new Set([...Object.keys(old.pipelines), ...Object.keys(next.pipelines)]);
    const restarted: string[] = [];
    const unchanged: string[] = [];
    const removed: string[] = [];
    for (const name of names) {
      if (!(name in next.pipelines)) removed.push(name);
      else if (!(name in old.pipelines) || fingerprint(old, name) !== fingerprint(next, name)) {
        restarted.push(name);
      } else unchanged.push(name);
    }
    const same = (kind: "brokers" | "handlers", name: string) =>
      JSON.stringify(old[kind][name]) === JSON.stringify(next[kind][name]);
    const keptPipelines = unchanged.map((n) => next.pipelines[n]!);
    const brokerKept = (name: string) =>
      same("brokers", name) &&
      (keptPipelines.some((p) => p.via === name) ||
        restarted.some((n) => next.pipelines[n]!.via === name));
    const stopping = [...removed, ...restarted]
      .map((n) => this.pipelines.get(n))
      .filter((p): p is PipelineRuntime => p !== undefined);
    for (const p of stopping) {
      const router = this.#routers.get(p.brokerName);
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
      for (const d of p.devices) this.#deviceOwner.delete(d.status.name);
      this.#runners = this.#runners.filter((r) => !p.devices.includes(r));
    }
    const usedHandlers = new Set(
      [...unchanged, ...restarted].flatMap((n) => handlerNames(next.pipelines[n]!)),
    );
    for (const [name, h] of [...this.handlers]) {
      if (usedHandlers.has(name) && same("handlers", name)) continue;
      try {
        await h.flush?.();
        await h.close?.();
      } catch (error) {
        this.#logger.warn("Closing handler failed", { handler: name, error: errorMessage(error) });
      }
      this.#componentAbort.get(`handler:${name}`)?.abort();
      this.handlers.delete(name);
    }
    for (const [name, b] of [...this.brokers]) {
      if (brokerKept(name)) continue;
      await b.close().catch((error) =>
        this.#logger.warn("Closing broker failed", { broker: name, error: errorMessage(error) })
      );
      this.#componentAbort.get(`broker:${name}`)?.abort();
      this.brokers.delete(name);
      this.#routers.delete(name);
    }
    this.#config = next;
    this.#registry = loaded.registry;
    this.#configureMetrics();
    for (const name of restarted) {
      const pr = await this.#buildPipeline(name);
      pr.pool?.start();
      pr.gateway?.start();
      for (const d of pr.devices) d.start();
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
      for (const d of this.#runners) await close("device", d.status.name, () => d.close());
    }
    for (const [name, h] of this.handlers) await close("handler", name, h.close?.bind(h));
    for (const [name, b] of this.brokers) await close("broker", name, b.close.bind(b));
  }
}

/**
 * Assembly: creates the components of a configuration for a role, each with
 * its plugin context, and wires them into pipelines.
 *
 * @module
 */
import { checkCapabilities } from "../broker.ts";
import { pluginContext } from "../chain.ts";
import type { RetryPolicy } from "../backoff.ts";
import type { Clock } from "../clock.ts";
import type { ResolvedConfig, Role } from "../config/schema.ts";
import { errorMessage } from "../errors.ts";
import type { EventBus } from "../events.ts";
import type { Logger } from "../log.ts";
import type {
  BrokerInstance,
  HandlerInstance,
  InstanceOf,
  PluginContext,
  PluginKind,
} from "../plugin.ts";
import type { Random } from "../random.ts";
import type { PluginRegistry } from "../registry.ts";
import type { SampleStamper } from "../sample.ts";
import type { Priority } from "../schema.ts";
import { DeviceRunner } from "./devices.ts";
import { Gateway } from "./gateway.ts";
import { HubQueue } from "./hub_queue.ts";
import type { QueueName, RuntimeMetrics } from "./metrics.ts";
import type { Tap } from "./tap.ts";
import { BrokerRouter, type ChainLink } from "./_router.ts";
import { WorkerPool } from "./workers.ts";
import { pushAcked } from "./_ingest.ts";
import { handlerNames } from "./_reload.ts";

/** A component that failed to start, named for the user. */
export class StartupError extends Error {
  override name = "StartupError";
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

/** What assembly takes from the runtime; the configuration and registry change on reload. */
export interface AssemblyDeps {
  role: Role;
  config(): ResolvedConfig;
  registry(): PluginRegistry;
  logger: Logger;
  clock: Clock;
  random: Random;
  baseDir: string;
  dataDir: string;
  /** Aborts when the runtime stops. */
  signal: AbortSignal;
  events: EventBus;
  metrics: RuntimeMetrics;
  tap: Tap;
  stamper: SampleStamper;
  brokers: Map<string, BrokerInstance>;
  handlers: Map<string, HandlerInstance>;
  pipelines: Map<string, PipelineRuntime>;
}

/** Starts a pipeline's workers, gateway and devices. */
export function startPipeline(pr: PipelineRuntime): void {
  pr.pool?.start();
  pr.gateway?.start();
  for (const d of pr.devices) d.start();
}

/** Creates components and wires pipelines, keeping what a reload needs to undo it. */
export class Assembly {
  /** Aborts each component's context, by `kind:name`. */
  readonly componentAbort = new Map<string, AbortController>();
  /** One router per broker, shared by the pipelines that use it. */
  readonly routers = new Map<string, BrokerRouter>();
  /** Every device runner built, for closing when startup fails. */
  runners: DeviceRunner[] = [];
  /** The pipeline that owns each device. */
  readonly deviceOwner = new Map<string, PipelineRuntime>();
  readonly #deps: AssemblyDeps;

  constructor(deps: AssemblyDeps) {
    this.#deps = deps;
  }

  /**
   * Takes stopped pipelines apart for a reload: forgets them and their
   * devices, then closes every handler and broker the new configuration does
   * not keep (flushing handlers first) and aborts their contexts.
   */
  async dismantle(
    stopped: readonly PipelineRuntime[],
    keep: { handlerKept(name: string): boolean; brokerKept(name: string): boolean },
  ): Promise<void> {
    const { pipelines, handlers, brokers, logger } = this.#deps;
    for (const p of stopped) {
      p.removeDepthProbe?.();
      pipelines.delete(p.name);
      for (const d of p.devices) this.deviceOwner.delete(d.status.name);
      this.runners = this.runners.filter((r) => !p.devices.includes(r));
    }
    for (const [name, h] of [...handlers]) {
      if (keep.handlerKept(name)) continue;
      try {
        await h.flush?.();
        await h.close?.();
      } catch (error) {
        logger.warn("Closing handler failed", { handler: name, error: errorMessage(error) });
      }
      this.componentAbort.get(`handler:${name}`)?.abort();
      handlers.delete(name);
    }
    for (const [name, b] of [...brokers]) {
      if (keep.brokerKept(name)) continue;
      await b.close().catch((error) =>
        logger.warn("Closing broker failed", { broker: name, error: errorMessage(error) })
      );
      this.componentAbort.get(`broker:${name}`)?.abort();
      brokers.delete(name);
      this.routers.delete(name);
    }
  }

  /** A plugin context; a component created again under the same name aborts the old one. */
  #context(kind: PluginKind, name: string): PluginContext {
    const abort = new AbortController();
    this.componentAbort.get(`${kind}:${name}`)?.abort();
    this.componentAbort.set(`${kind}:${name}`, abort);
    return pluginContext(kind, name, {
      logger: this.#deps.logger,
      clock: this.#deps.clock,
      signal: AbortSignal.any([abort.signal, this.#deps.signal]),
      baseDir: this.#deps.baseDir,
      dataDir: this.#deps.dataDir,
      events: this.#deps.events,
      metrics: this.#deps.metrics.pluginMetrics(kind, name),
    });
  }

  async #instantiate<K extends PluginKind>(
    kind: K,
    name: string,
    block: { type: string; config: Record<string, unknown> },
  ): Promise<InstanceOf[K]> {
    const entry = this.#deps.registry().entry(kind, block.type);
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

  /** Builds every pipeline of the configuration. */
  async build(): Promise<void> {
    const names = Object.keys(this.#deps.config().pipelines);
    if (names.length === 0) {
      throw new StartupError("Nothing to run: the configuration defines no pipelines");
    }
    for (const name of names) await this.buildPipeline(name);
  }

  async #ensureBroker(name: string): Promise<BrokerInstance> {
    const existing = this.#deps.brokers.get(name);
    if (existing) return existing;
    const block = this.#deps.config().brokers[name]!;
    const broker = await this.#instantiate("broker", name, block);
    this.#deps.brokers.set(name, broker);
    const declared = this.#deps.registry().get("broker", block.type)?.shared;
    if (declared !== undefined && declared !== broker.shared) {
      throw new StartupError(
        `Cannot start broker "${name}" (plugin "${block.type}"): its definition says ` +
          `shared: ${declared} but the instance it created says shared: ${broker.shared}`,
      );
    }
    try {
      checkCapabilities(broker, name);
    } catch (error) {
      throw new StartupError(`${errorMessage(error)} (plugin "${block.type}")`, { cause: error });
    }
    // The configuration loader refuses this already when the plugin declares `shared`.
    if (this.#deps.role !== "all" && !broker.shared) {
      throw new StartupError(
        `Role "${this.#deps.role}" cannot use broker "${name}" (type "${block.type}"): it lives ` +
          `inside one process, so a separate hub and processor would never see each other's ` +
          `tasks. Split roles need a shared broker: sqlite (processes on one machine) or ` +
          `Redis; use role "all" with the ` +
          `in-process broker`,
      );
    }
    return broker;
  }

  async #ensureHandler(name: string): Promise<HandlerInstance> {
    const existing = this.#deps.handlers.get(name);
    if (existing) return existing;
    const handler = await this.#instantiate("handler", name, this.#deps.config().handlers[name]!);
    this.#deps.handlers.set(name, handler);
    return handler;
  }

  /** Builds one pipeline and the broker and handlers it uses, unless they exist. */
  async buildPipeline(name: string): Promise<PipelineRuntime> {
    const p = this.#deps.config().pipelines[name]!;
    const broker = await this.#ensureBroker(p.via);
    if (this.#deps.role !== "hub") {
      for (const h of handlerNames(p)) await this.#ensureHandler(h);
    }
    const pr: PipelineRuntime = {
      name,
      brokerName: p.via,
      broker,
      devices: [],
      handlers: p.handlers,
    };
    if (this.#deps.role !== "processor") await this.#buildHub(pr);
    if (this.#deps.role !== "hub") this.#buildProcessor(pr);
    this.#deps.pipelines.set(name, pr);
    pr.removeDepthProbe = this.#addDepthProbe(pr);
    return pr;
  }

  async #buildHub(pr: PipelineRuntime): Promise<void> {
    const p = this.#deps.config().pipelines[pr.name]!;
    const totals = this.#deps.metrics.totals(pr.name);
    const dropped = this.#deps.metrics.samplesDropped;
    const stages = this.#deps.metrics.stageDuration;
    const beforePush = stages.labels(pr.name, "device");
    const inQueue = stages.labels(pr.name, "hub_queue");
    const clock = this.#deps.clock;
    let batches = 0;
    const queue = new HubQueue({
      capacity: p.hub_queue.capacity,
      overflow: p.hub_queue.overflow,
      onDrop: (count, reason) => {
        if (count <= 0) return;
        totals.samples_dropped += count;
        dropped.labels(pr.name, reason).inc(count);
      },
      onWait: (before, waited) => {
        // One batch in four: a batch may be one sample (a REST request), and two observations
        // per request would cost a few percent of the ingest rate.
        if (++batches % 4 !== 0) return;
        beforePush.observe(Math.max(0, before) / 1000);
        inQueue.observe(Math.max(0, waited) / 1000);
      },
      now: () => clock.now(),
    });
    this.#deps.metrics.zeroHub(pr.name, p.task_type);
    const devicePriority = new Map<string, Priority>();
    for (const deviceName of p.from) {
      const block = this.#deps.config().devices[deviceName]!;
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
          this.#deps.tap.offer(pr.name, samples);
          return pushAcked(queue, samples, ack, pr.broker.durable === true);
        },
        ...(block.tags ? { tags: block.tags } : {}),
        logger: this.#deps.logger,
        clock: this.#deps.clock,
        random: this.#deps.random,
        metrics: this.#deps.metrics,
        stamper: this.#deps.stamper,
      });
      pr.devices.push(runner);
      this.runners.push(runner);
      this.deviceOwner.set(deviceName, pr);
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
      clock: this.#deps.clock,
      logger: this.#deps.logger,
      metrics: this.#deps.metrics,
    });
  }

  #buildProcessor(pr: PipelineRuntime): void {
    const p = this.#deps.config().pipelines[pr.name]!;
    const link = (name: string): ChainLink => ({ name, instance: this.#deps.handlers.get(name)! });
    const chains = new Map<string, ChainLink[]>();
    for (const [type, chain] of Object.entries(p.routes)) chains.set(type, chain.map(link));
    chains.set(p.task_type, p.handlers.map(link));
    this.#deps.metrics.zeroProcessor(pr.name, chains.keys());
    const retry: RetryPolicy = p.retry;
    let router = this.routers.get(pr.brokerName);
    if (!router) this.routers.set(pr.brokerName, router = new BrokerRouter());
    router.set(pr.name, chains, retry);
    pr.pool = new WorkerPool({
      pipeline: pr.name,
      router,
      broker: pr.broker,
      workers: p.workers,
      prefetch: p.prefetch,
      fallbackRetry: retry,
      clock: this.#deps.clock,
      random: this.#deps.random,
      logger: this.#deps.logger,
      metrics: this.#deps.metrics,
      consumerPrefix: `${pr.name}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
      tap: this.#deps.tap,
    });
  }

  #addDepthProbe(pr: PipelineRuntime): () => void {
    const gauge = this.#deps.metrics.queueDepth;
    return this.#deps.metrics.addDepthProbe(async () => {
      const labels = (queue: QueueName) => ({ pipeline: pr.name, broker: pr.brokerName, queue });
      if (pr.queue) gauge.set(labels("hub"), pr.queue.size);
      try {
        const d = await pr.broker.depth();
        gauge.set(labels("broker"), d.queued);
        gauge.set(labels("inflight"), d.inflight);
        gauge.set(labels("delayed"), d.delayed);
        gauge.set(labels("dead_letter"), d.dead);
      } catch {
        // An unreachable broker shows in readiness, not as a scrape failure.
      }
    });
  }
}

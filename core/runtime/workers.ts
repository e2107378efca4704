/**
 * The worker pool: N workers reserve tasks from a broker, run each task's
 * handler chain (chosen by task type) and settle every delivery exactly once:
 * completed, retried after backoff, dead-lettered, or released on a hard stop.
 *
 * @module
 */
import { decideFailure, type RetryPolicy } from "../backoff.ts";
import type { Clock } from "../clock.ts";
import { errorMessage, isPermanent, isUnavailable, PermanentError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { BrokerInstance, Delivery, HandlerContext } from "../plugin.ts";
import type { Random } from "../random.ts";
import { type ChainLink, chainTopics, runChain } from "../chain.ts";
import type { Sample } from "../sample.ts";
import { decodeTaskSamples } from "../sample_codec.ts";
import type { Task, TaskError } from "../task.ts";
import type { RuntimeMetrics } from "./metrics.ts";
import { BrokerRouter, type Route } from "./_router.ts";
import { countOutcomes, type Outcome } from "./_outcome.ts";
import { encodable, isolate, type Quarantined, quarantineOutcome } from "./_quarantine.ts";
import { DeferredRetries } from "./_deferred_retries.ts";
import { DependencyHold } from "./_dependency_hold.ts";
import { LoopTurns } from "./_loop_turns.ts";
import type { Tap } from "./tap.ts";

export { BrokerRouter, type ChainLink, chainTopics, type Route };

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** The pipeline whose workers these are (tasks may belong to others on the same broker). */
  pipeline: string;
  router: BrokerRouter;
  broker: BrokerInstance;
  workers: number;
  prefetch: number;
  /** Retry policy for tasks no pipeline claims (they fail permanently anyway). */
  fallbackRetry: RetryPolicy;
  clock: Clock;
  random: Random;
  logger: Logger;
  metrics: RuntimeMetrics;
  /** Prefix of consumer names; made unique per process. */
  consumerPrefix: string;
  /** Shown each handler's output and the samples dead-lettered (the admin API's tap). */
  tap?: Tap;
}

/** How {@link WorkerPool.stop} ends the pool. */
export interface StopOptions {
  /**
   * Keep taking tasks until the broker has none queued, delayed or in
   * flight (used for the in-process broker, whose contents die with the
   * process); otherwise only in-flight tasks are finished.
   */
  drain: boolean;
  /** Aborts when the grace period is over: unfinished work is released. */
  deadline: AbortSignal;
}

const LATENCY_SAMPLES_PER_TASK = 16;
const STUCK_AFTER_DEADLINE_MS = 1000;

function taskError(error: unknown): TaskError {
  return {
    message: errorMessage(error),
    name: error instanceof Error ? error.name : "Error",
    permanent: isPermanent(error),
  };
}

/** Runs a broker's tasks through handler chains. */
export class WorkerPool {
  #o: WorkerPoolOptions;
  #reserving = new AbortController();
  #hard = new AbortController();
  #workers: Promise<void>[] = [];
  #drain = false;
  #busy = 0;
  #brokerStage = new Map<string, { observe(seconds: number): void }>();
  #releasedPaused = false;
  #reserveFailing = false;
  /** Gives timers and I/O a turn while the workers are busy. */
  #turns = new LoopTurns();
  /** Holds the workers while a handler's dependency is down. */
  #hold: DependencyHold;
  /** Retries waiting out their delay here, for a broker without `delayedRetries`. */
  #deferred: DeferredRetries | undefined;

  constructor(options: WorkerPoolOptions) {
    this.#o = options;
    this.#hold = new DependencyHold(options);
    if (!options.broker.capabilities.delayedRetries) {
      this.#deferred = new DeferredRetries(options.clock, (o) => this.#settleNow(o));
    }
  }

  /** Workers currently running a task. */
  get busy(): number {
    return this.#busy;
  }

  start(): void {
    if (this.#workers.length > 0) return;
    for (let i = 0; i < this.#o.workers; i++) {
      this.#workers.push(this.#work(`${this.#o.consumerPrefix}-${i}`));
    }
  }

  /** Stops the workers as `options` says and waits for them. */
  async stop({ drain, deadline }: StopOptions): Promise<void> {
    this.#drain = drain;
    const onDeadline = () => {
      this.#reserving.abort();
      this.#hard.abort();
    };
    if (deadline.aborted) onDeadline();
    deadline.addEventListener("abort", onDeadline, { once: true });
    if (!drain) this.#reserving.abort();
    else this.#watchDrained(deadline);
    // A handler that ignores its abort signal cannot hold the process
    // forever: a second after the deadline the pool stops waiting for it
    // (a shared broker redelivers its task once the lease expires).
    const stuck = Promise.withResolvers<"stuck">();
    const giveUp = () => setTimeout(() => stuck.resolve("stuck"), STUCK_AFTER_DEADLINE_MS);
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (deadline.aborted) timer = giveUp();
    else deadline.addEventListener("abort", () => timer = giveUp(), { once: true });
    const outcome = await Promise.race([
      Promise.all(this.#workers).then(() => this.#deferred?.flush()),
      stuck.promise,
    ]);
    clearTimeout(timer);
    this.#turns.stop();
    deadline.removeEventListener("abort", onDeadline);
    if (outcome === "stuck") {
      this.#o.logger.error("Handlers still running after the grace period; not waiting", {
        pipeline: this.#o.pipeline,
        busy_workers: this.#busy,
      });
    }
  }

  /** In drain mode, stop reserving once the broker is empty. */
  async #watchDrained(deadline: AbortSignal): Promise<void> {
    const { broker, clock } = this.#o;
    while (!this.#reserving.signal.aborted && !deadline.aborted) {
      const d = await broker.depth();
      if (d.queued === 0 && d.delayed === 0 && d.inflight === 0 && this.#busy === 0) {
        this.#reserving.abort();
        return;
      }
      try {
        await clock.sleep(10, deadline);
      } catch {
        return;
      }
    }
  }

  async #work(consumer: string): Promise<void> {
    const { broker, prefetch, logger, pipeline, clock } = this.#o;
    const reserving = this.#reserving.signal;
    while (!reserving.aborted) {
      const held = this.#hold.remaining();
      if (held > 0) {
        // A dependency is down: reserving would only put tasks straight back.
        try {
          await clock.sleep(held, reserving);
        } catch {
          break;
        }
        continue;
      }
      let deliveries: Delivery[];
      try {
        deliveries = await broker.reserve(consumer, prefetch, reserving);
      } catch (error) {
        if (reserving.aborted) break;
        // Once per outage for the whole pool, not once per worker per second.
        if (!this.#reserveFailing) {
          this.#reserveFailing = true;
          logger.warn("Cannot reserve tasks; will keep trying", {
            pipeline,
            error: errorMessage(error),
          });
        }
        try {
          await clock.sleep(1000, reserving);
        } catch {
          break;
        }
        continue;
      }
      if (this.#reserveFailing) {
        this.#reserveFailing = false;
        logger.info("Reserving tasks again", { pipeline });
      }
      if (deliveries.length === 0) continue;
      this.#busy++;
      try {
        await this.#runBatch(deliveries);
      } finally {
        this.#busy--;
      }
      await this.#turns.yieldIfHeld();
    }
  }

  async #runBatch(deliveries: Delivery[]): Promise<void> {
    const { broker, logger, pipeline } = this.#o;
    const outcomes: Outcome[] = [];
    try {
      await broker.started(deliveries);
    } catch (error) {
      logger.warn("Cannot mark tasks running", { pipeline, error: errorMessage(error) });
    }
    for (const delivery of deliveries) {
      if (this.#hard.signal.aborted) {
        outcomes.push({
          settlement: { delivery, outcome: "released" },
          pipeline: delivery.task.pipeline ?? this.#o.pipeline,
          samples: 0,
        });
        continue;
      }
      outcomes.push(await this.#runOne(delivery));
    }
    await this.#settle(outcomes);
    if (this.#releasedPaused) {
      // Another pipeline's tasks are waiting for it to restart: do not spin on them.
      this.#releasedPaused = false;
      await this.#o.clock.sleep(20);
    }
  }

  async #settle(outcomes: Outcome[]): Promise<void> {
    const now = this.#deferred ? this.#deferred.split(outcomes) : outcomes;
    if (now.length > 0) await this.#settleNow(now);
  }

  async #settleNow(outcomes: Outcome[]): Promise<void> {
    const settlements = outcomes.map((o) => o.settlement);
    const { broker, logger, pipeline, clock } = this.#o;
    for (let failures = 0;; failures++) {
      try {
        await broker.settle(settlements);
        break;
      } catch (error) {
        // The task stays reserved in the broker; a shared broker recovers it
        // after its lease expires, so giving up here loses nothing.
        if (failures === 0 || this.#hard.signal.aborted) {
          logger.warn("Cannot settle tasks", { pipeline, error: errorMessage(error) });
        }
        if (this.#hard.signal.aborted || failures >= 20) return;
        await clock.sleep(Math.min(5000, 100 * 2 ** failures));
      }
    }
    countOutcomes(this.#o.metrics, outcomes);
  }

  async #runOne(delivery: Delivery): Promise<Outcome> {
    const { router, random, logger } = this.#o;
    const task = delivery.task;
    const attempt = task.attempts + 1;
    const route = delivery.invalid === undefined
      ? router.resolve(task)
      : { unroutable: delivery.invalid };
    if (route === "paused") {
      this.#releasedPaused = true;
      return {
        settlement: { delivery, outcome: "released" },
        pipeline: task.pipeline ?? this.#o.pipeline,
        samples: 0,
      };
    }
    const pipeline = "unroutable" in route ? this.#o.pipeline : route.pipeline;
    if (task.attempts === 0) this.#brokerWait(pipeline, task.created_at);
    let count = 0;
    let samples: readonly Sample[] = [];
    try {
      if ("unroutable" in route) throw new PermanentError(route.unroutable);
      const decoded = decodeTaskSamples(task);
      samples = decoded.samples;
      count = decoded.samples.length;
      const quarantine: Quarantined[] = decoded.refused.map((r) => ({
        item: encodable(r.item),
        reason: `Not a valid sample (${r.where}): ${r.reason}`,
      }));
      if (decoded.samples.length > 0) {
        quarantine.push(
          ...await this.#runChain(route.chain, decoded.samples, task, attempt, pipeline),
        );
      }
      this.#hold.up();
      if (quarantine.length === 0) {
        return { settlement: { delivery, outcome: "completed" }, pipeline, samples: count };
      }
      const total = count + decoded.refused.length;
      const completed = total - quarantine.length;
      this.#tapQuarantine(pipeline, quarantine);
      return quarantineOutcome(delivery, quarantine, pipeline, completed, total);
    } catch (error) {
      if (this.#hard.signal.aborted && !isPermanent(error)) {
        // Cut short by shutdown, not failed: back to the queue, no attempt spent.
        logger.debug("Task released at shutdown", { pipeline, task: task.id });
        return { settlement: { delivery, outcome: "released" }, pipeline, samples: 0 };
      }
      const retry = "unroutable" in route ? this.#o.fallbackRetry : route.retry;
      if (isUnavailable(error)) {
        // Nothing is wrong with the task: put it back untouched and hold off.
        this.#hold.down(retry, error);
        return { settlement: { delivery, outcome: "released" }, pipeline, samples: 0 };
      }
      const decision = decideFailure(retry, attempt, isPermanent(error), random);
      const err = taskError(error);
      if (decision.action === "retry") {
        logger.debug("Task failed; retrying", {
          pipeline,
          task: task.id,
          attempt,
          in_ms: decision.delay,
          error: err.message,
        });
        return {
          settlement: { delivery, outcome: "retry", delay: decision.delay, error: err },
          pipeline,
          samples: count,
        };
      }
      this.#o.tap?.offer(pipeline, samples, "dead_letters", err.message);
      logger.warn("Task dead-lettered", {
        pipeline,
        task: task.id,
        type: task.type,
        attempts: attempt,
        reason: decision.reason,
        error: err.message,
      });
      return {
        settlement: { delivery, outcome: "dead_letter", error: err },
        pipeline,
        samples: count,
      };
    }
  }

  #context(task: Readonly<Task>, attempt: number, pipeline: string): HandlerContext {
    return {
      task,
      attempt,
      pipeline,
      signal: this.#hard.signal,
      clock: this.#o.clock,
      ...chainTopics(),
    };
  }

  /**
   * Runs a task's samples through its chain. A permanent failure of a link
   * given several samples is narrowed down to the samples that cause it
   * ({@link isolate}); those are returned for quarantine and the rest go on
   * through the chain. Throws when the failure is not about samples (every
   * sample fails alone too) or is transient: the whole task settles as usual.
   */
  async #runChain(
    chain: readonly ChainLink[],
    decoded: readonly Sample[],
    task: Readonly<Task>,
    attempt: number,
    pipeline: string,
  ): Promise<Quarantined[]> {
    const ctx = this.#context(task, attempt, pipeline);
    const quarantine: Quarantined[] = [];
    // Whether the samples a link gets are still decoded[i] (none dropped or added so far).
    let aligned = true;
    const out = await runChain(chain, decoded, ctx, {
      stopWhenEmpty: true,
      ran: (link, ms, input, output) => {
        this.#o.metrics.taskDuration.labels(pipeline, link.name).observe(ms / 1000);
        this.#o.tap?.offer(pipeline, output, `handler:${link.name}`);
        if (output.length !== input.length) aligned = false;
      },
      failed: async (link, input, error) => {
        if (!isPermanent(error) || input.length < 2 || this.#hard.signal.aborted) throw error;
        const isolated = await isolate(link, input, ctx);
        if (isolated.passed.length === 0) throw error;
        for (const f of isolated.failed) {
          quarantine.push({
            item: aligned ? decoded[f.index]! : input[f.index]!,
            reason: f.reason,
          });
        }
        this.#o.logger.warn("Samples quarantined", {
          pipeline,
          task: task.id,
          handler: link.name,
          samples: isolated.failed.length,
          of: input.length,
          error: isolated.failed[0]!.reason,
        });
        aligned = false;
        return isolated.passed;
      },
    });
    this.#observeLatency(pipeline, out);
    return quarantine;
  }

  /** Shows the quarantined samples to the tap, each with its reason. */
  #tapQuarantine(pipeline: string, quarantine: readonly Quarantined[]): void {
    const tap = this.#o.tap;
    if (!tap || tap.size === 0) return;
    for (const q of quarantine) {
      // Items the edge refused may be no sample at all: objects are shown as they are
      // (a device or metric filter passes over them), anything else is left to the DLQ.
      if (typeof q.item !== "object" || q.item === null) continue;
      tap.offer(pipeline, [q.item as Sample], "dead_letters", q.reason);
    }
  }

  /** Observes how long a task waited in the broker (its first attempt), per pipeline. */
  #brokerWait(pipeline: string, createdAt: number): void {
    let hist = this.#brokerStage.get(pipeline);
    if (!hist) {
      hist = this.#o.metrics.stageDuration.labels(pipeline, "broker");
      this.#brokerStage.set(pipeline, hist);
    }
    hist.observe(Math.max(0, this.#o.clock.now() - createdAt) / 1000);
  }

  #observeLatency(pipeline: string, samples: readonly Sample[]): void {
    if (samples.length === 0) return;
    const now = this.#o.clock.now();
    const hist = this.#o.metrics.sampleLatency.labels(pipeline);
    const step = Math.max(1, Math.floor(samples.length / LATENCY_SAMPLES_PER_TASK));
    for (let i = 0; i < samples.length; i += step) {
      hist.observe(Math.max(0, now - samples[i]!.ts) / 1000);
    }
  }
}

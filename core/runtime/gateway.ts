/**
 * The gateway: takes samples from the hub queue, batches them into tasks
 * (`max_samples` per task, or whatever arrived within `max_wait` of the
 * first sample) and hands the tasks to the broker. On stop it flushes the
 * partial batch, so nothing in the hub queue is left behind. Once the broker
 * holds a round of tasks it acknowledges the hub queue's waiting batches
 * (see `HubQueue.acknowledge`); a batch waiting for that is flushed at once
 * rather than after `max_wait`, and batches arriving meanwhile ride along
 * with the next round (group commit).
 *
 * @module
 */
import { type Clock, sleepUnlessAborted } from "../clock.ts";
import { errorMessage, isPermanent } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { BrokerInstance } from "../plugin.ts";
import type { Sample } from "../sample.ts";
import type { Priority } from "../schema.ts";
import { newTaskId, type Task } from "../task.ts";
import type { HubQueue } from "./hub_queue.ts";
import type { RuntimeMetrics } from "./metrics.ts";

/** Options of {@link Gateway}. */
export interface GatewayOptions {
  pipeline: string;
  taskType: string;
  priority: Priority;
  /** Priority per device, where it differs from the pipeline's. */
  devicePriority: ReadonlyMap<string, Priority>;
  maxSamples: number;
  maxWait: number;
  queue: HubQueue;
  broker: BrokerInstance;
  clock: Clock;
  logger: Logger;
  metrics: RuntimeMetrics;
  /** Delay before retrying a failed enqueue (the broker is unreachable). */
  retryDelay?: number;
}

/** Most full tasks handed to the broker in one `enqueue` call. */
const MAX_TASKS_PER_ENQUEUE = 64;

/** Moves samples from a hub queue into broker tasks. */
export class Gateway {
  #o: GatewayOptions;
  #done: Promise<void> | undefined;
  #stopping = new AbortController();
  #deadline: AbortSignal | undefined;

  #enqueueTime: { observe(seconds: number): void };

  constructor(options: GatewayOptions) {
    this.#o = options;
    this.#enqueueTime = options.metrics.stageDuration.labels(options.pipeline, "enqueue");
  }

  start(): void {
    this.#done ??= this.#loop();
  }

  /**
   * Stops after the hub queue is drained: the caller closes the queue first
   * so no new samples arrive, then awaits this. When `deadline` aborts while
   * the broker still refuses tasks, the remaining samples are dropped and
   * counted (reason `broker_unavailable`) instead of waiting forever.
   */
  async stop(deadline?: AbortSignal): Promise<void> {
    this.#deadline = deadline;
    this.#stopping.abort();
    await this.#done;
  }

  async #loop(): Promise<void> {
    const { queue, maxSamples, maxWait, clock } = this.#o;
    const stopping = this.#stopping.signal;
    while (true) {
      if (queue.size === 0) {
        if (stopping.aborted || queue.closed) break;
        await queue.waitFor(1, stopping);
        continue;
      }
      if (queue.size < maxSamples && !stopping.aborted && !queue.closed) {
        // Wait for a full batch, at most max_wait from now.
        const timeout = new AbortController();
        const timer = clock.sleep(maxWait, timeout.signal).then(() => timeout.abort(), () => {});
        await queue.waitFor(maxSamples, AbortSignal.any([timeout.signal, stopping]));
        timeout.abort();
        await timer;
      }
      const tasks: Task[] = [];
      do {
        tasks.push(...this.#tasksFor(queue.take(maxSamples)));
      } while (queue.size >= maxSamples && tasks.length < MAX_TASKS_PER_ENQUEUE);
      if (!await this.#enqueue(tasks)) break;
      // The broker holds everything taken so far: producers waiting on that may go on.
      queue.acknowledge();
    }
  }

  /** Gives up on tasks the broker never took: counts their samples as dropped. */
  #abandon(tasks: Task[], error: unknown): void {
    const { logger, metrics, pipeline, queue } = this.#o;
    let samples = tasks.reduce(
      (n, t) => n + (t.payload as { samples: Sample[] }).samples.length,
      0,
    );
    samples += queue.take(Number.MAX_SAFE_INTEGER).length;
    queue.failAcks(new Error(`The broker is unavailable: ${errorMessage(error)}`));
    metrics.totals(pipeline).samples_dropped += samples;
    metrics.samplesDropped.labels(pipeline, "broker_unavailable").inc(samples);
    logger.error("Broker unavailable at shutdown; samples dropped", {
      pipeline,
      samples,
      error: errorMessage(error),
    });
  }

  /** One task per priority present in the batch (usually exactly one). */
  #tasksFor(samples: Sample[]): Task[] {
    const { devicePriority, priority, taskType, pipeline, clock } = this.#o;
    const now = clock.now();
    const make = (list: Sample[], p: Priority): Task => ({
      id: newTaskId(now),
      type: taskType,
      payload: { samples: list },
      attempts: 0,
      created_at: now,
      priority: p,
      pipeline,
      // Every sample passed the edge before it reached the hub queue.
      checked: true,
    });
    if (devicePriority.size === 0) return [make(samples, priority)];
    const groups = new Map<Priority, Sample[]>();
    for (const s of samples) {
      const p = devicePriority.get(s.device) ?? priority;
      let g = groups.get(p);
      if (!g) groups.set(p, g = []);
      g.push(s);
    }
    return [...groups].map(([p, list]) => make(list, p));
  }

  /**
   * Enqueues tasks one at a time after the broker refused a batch for its
   * content: tasks refused again for good are dropped and counted (reason
   * `unencodable`); returns the tasks still to enqueue (after a transient error).
   */
  async #enqueueOneByOne(tasks: Task[]): Promise<Task[]> {
    const { broker, logger, metrics, pipeline } = this.#o;
    for (let i = 0; i < tasks.length; i++) {
      const task = tasks[i]!;
      try {
        await broker.enqueue([task]);
        this.#counted([task]);
      } catch (error) {
        if (!isPermanent(error)) return tasks.slice(i);
        const samples = (task.payload as { samples: Sample[] }).samples.length;
        metrics.totals(pipeline).samples_dropped += samples;
        metrics.samplesDropped.labels(pipeline, "unencodable").inc(samples);
        logger.error("The broker cannot take a task; its samples are dropped", {
          pipeline,
          task: task.id,
          samples,
          error: errorMessage(error),
        });
      }
    }
    return [];
  }

  #counted(tasks: readonly Task[]): void {
    const { metrics, pipeline, taskType } = this.#o;
    metrics.totals(pipeline).tasks_enqueued += tasks.length;
    metrics.tasksEnqueued.labels(pipeline, taskType).inc(tasks.length);
  }

  /** Hands tasks to the broker; `false` when they were abandoned at the deadline. */
  async #enqueue(tasks: Task[]): Promise<boolean> {
    const { broker, logger, pipeline, clock } = this.#o;
    let failures = 0;
    while (true) {
      try {
        const started = clock.now();
        await broker.enqueue(tasks);
        this.#enqueueTime.observe((clock.now() - started) / 1000);
        break;
      } catch (error) {
        if (isPermanent(error)) {
          // The broker can never take some task (its content): find which, keep the rest.
          tasks = await this.#enqueueOneByOne(tasks);
          if (tasks.length === 0) return true;
          continue;
        }
        // The broker is unreachable: hold the batch (the hub queue fills and
        // its overflow policy applies upstream) and try again.
        failures++;
        if (failures === 1) {
          logger.warn("Cannot enqueue tasks; will keep trying", {
            pipeline,
            error: errorMessage(error),
          });
        }
        const delay = Math.min(5000, (this.#o.retryDelay ?? 100) * 2 ** (failures - 1));
        const deadline = this.#deadline;
        if (deadline && !await sleepUnlessAborted(clock, delay, deadline)) {
          this.#abandon(tasks, error);
          return false;
        }
        if (!deadline) await clock.sleep(delay);
      }
    }
    if (failures > 0) logger.info("Enqueueing tasks again", { pipeline, failures });
    this.#counted(tasks);
    return true;
  }
}

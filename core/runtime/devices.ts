/**
 * Runs one device plugin instance under supervision: tracks its state
 * (`starting`, `up`, `down`, `stopped`), logs state changes once, counts read
 * errors, and runs it again with exponential backoff when it throws.
 *
 * @module
 */
import { backoffDelay, type RetryPolicy } from "../backoff.ts";
import { type Clock, sleepUnlessAborted } from "../clock.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { DeviceInstance, DeviceIO } from "../plugin.ts";
import type { Random } from "../random.ts";
import { admitSample, type Sample, type SampleInput, type SampleStamper } from "../sample.ts";
import type { Ack } from "./hub_queue.ts";
import type { RuntimeMetrics } from "./metrics.ts";

/** A device's state as shown by status and metrics. */
export type DeviceState = (typeof DEVICE_STATES)[number];
/** Every device state. */
export const DEVICE_STATES = ["starting", "up", "down", "stopped"] as const;

/** What status and the admin API show about a device. */
export interface DeviceStatus {
  name: string;
  type: string;
  pipeline: string;
  state: DeviceState;
  samples: number;
  read_errors: number;
  restarts: number;
  last_sample_at?: number;
  last_error?: string;
  last_error_at?: number;
  since: number;
}

/** Restart backoff of failing devices. */
export const DEVICE_RESTART_POLICY: RetryPolicy = {
  max_attempts: Number.POSITIVE_INFINITY,
  delay: 500,
  max: 30_000,
  jitter: 0.2,
};

/** Options of {@link DeviceRunner}. */
export interface DeviceRunnerOptions {
  name: string;
  type: string;
  pipeline: string;
  instance: DeviceInstance;
  /** Where samples go (the pipeline's hub queue). */
  sink: (samples: Sample[], ack?: Ack) => void | Promise<void>;
  tags?: Record<string, string>;
  logger: Logger;
  clock: Clock;
  random: Random;
  metrics: RuntimeMetrics;
  /** Gives samples without `ts` their identity (one per runtime). */
  stamper: SampleStamper;
  restartPolicy?: RetryPolicy;
}

/** A device refusing samples is logged at most this often (it is always counted). */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/** Supervises one device. */
export class DeviceRunner {
  readonly status: DeviceStatus;
  #options: DeviceRunnerOptions;
  #abort = new AbortController();
  #done: Promise<void> | undefined;
  #refusalLoggedAt = Number.NEGATIVE_INFINITY;

  constructor(options: DeviceRunnerOptions) {
    this.#options = options;
    this.status = {
      name: options.name,
      type: options.type,
      pipeline: options.pipeline,
      state: "starting",
      samples: 0,
      read_errors: 0,
      restarts: 0,
      since: options.clock.now(),
    };
    options.metrics.zeroDevice(options.pipeline, options.name);
  }

  /** Starts the supervision loop. */
  start(): void {
    this.#done ??= this.#loop();
  }

  /** Aborts the device and waits for it to return (and close). */
  async stop(): Promise<void> {
    this.#abort.abort(new DOMException("Device stopping", "AbortError"));
    await this.#done;
    await this.close();
  }

  /** Resolves when the device has stopped on its own or been stopped. */
  get done(): Promise<void> {
    return this.#done ?? Promise.resolve();
  }

  #setState(state: DeviceState, error?: unknown): void {
    const { logger, metrics, clock, name } = this.#options;
    const s = this.status;
    if (error !== undefined) {
      s.last_error = errorMessage(error);
      s.last_error_at = clock.now();
    }
    if (s.state === state) return;
    const previous = s.state;
    s.state = state;
    s.since = clock.now();
    metrics.deviceUp.labels(name).set(state === "up" ? 1 : 0);
    if (state === "down") {
      logger.warn("Device down", { device: name, error: s.last_error ?? "unknown" });
    } else if (state === "up" && previous !== "starting") {
      logger.info("Device up again", { device: name });
    } else if (state === "up") {
      logger.debug("Device up", { device: name });
    }
  }

  /**
   * The edge for a device's batch: checks and stamps every sample; refused
   * ones are left out and counted as read errors.
   */
  #admit(samples: SampleInput[]): Sample[] {
    const { metrics, name, pipeline, clock, stamper, logger } = this.#options;
    const now = clock.now();
    // The accepted ones, copied only once a sample is refused (the common batch is all good).
    let kept: Sample[] | undefined;
    let reason = "";
    for (let i = 0; i < samples.length; i++) {
      const problem = admitSample(samples[i], now, stamper);
      if (problem === undefined) kept?.push(samples[i] as Sample);
      else if (kept === undefined) {
        kept = samples.slice(0, i) as Sample[];
        reason = `Sample ${i} refused: ${problem}`;
      }
    }
    if (kept === undefined) return samples as Sample[];
    const refused = samples.length - kept.length;
    const status = this.status;
    status.read_errors += refused;
    status.last_error = reason;
    status.last_error_at = now;
    metrics.deviceReadErrors.labels(name).inc(refused);
    metrics.samplesRefused.labels(pipeline, "device").inc(refused);
    metrics.totals(pipeline).samples_refused += refused;
    if (now - this.#refusalLoggedAt >= REFUSAL_LOG_INTERVAL_MS) {
      this.#refusalLoggedAt = now;
      logger.warn("Device samples refused", { device: name, samples: refused, error: reason });
    }
    return kept;
  }

  #io(): DeviceIO {
    const { sink, tags, metrics, name, pipeline, clock } = this.#options;
    const ingested = metrics.samplesIngested.labels(pipeline, name);
    const readErrors = metrics.deviceReadErrors.labels(name);
    const totals = metrics.totals(pipeline);
    const status = this.status;
    return {
      signal: this.#abort.signal,
      emit: (input, options) => {
        const durable = options?.durable === true;
        if (input.length === 0) return durable ? Promise.resolve() : undefined;
        if (status.state !== "up") this.#setState("up");
        if (tags) {
          for (const s of input) s.tags = s.tags ? { ...tags, ...s.tags } : tags;
        }
        const samples = this.#admit(input);
        if (samples.length === 0) return durable ? Promise.resolve() : undefined;
        status.samples += samples.length;
        status.last_sample_at = clock.now();
        totals.samples_read += samples.length;
        ingested.inc(samples.length);
        if (!durable) return sink(samples);
        const { promise, resolve, reject } = Promise.withResolvers<void>();
        const pushed = sink(samples, { resolve, reject });
        // Blocked first (backpressure), then held by the broker.
        return pushed ? pushed.then(() => promise) : promise;
      },
      up: () => this.#setState("up"),
      down: (error) => {
        status.read_errors++;
        readErrors.inc();
        this.#setState("down", error);
      },
      readError: (error) => {
        status.read_errors++;
        readErrors.inc();
        status.last_error = errorMessage(error);
        status.last_error_at = clock.now();
      },
    };
  }

  async #loop(): Promise<void> {
    const { instance, clock, random, logger, metrics, name } = this.#options;
    const policy = this.#options.restartPolicy ?? DEVICE_RESTART_POLICY;
    const signal = this.#abort.signal;
    const io = this.#io();
    let failures = 0;
    while (!signal.aborted) {
      const samplesBefore = this.status.samples;
      try {
        await instance.run(io);
        if (!signal.aborted) {
          logger.info("Device finished", { device: name, samples: this.status.samples });
        }
        break;
      } catch (error) {
        if (signal.aborted) break;
        // A device that worked for a while starts its backoff over.
        failures = this.status.samples > samplesBefore ? 1 : failures + 1;
        this.status.read_errors++;
        metrics.deviceReadErrors.labels(name).inc();
        this.#setState("down", error);
        const delay = backoffDelay(policy, failures, random);
        logger.debug("Device restarting", { device: name, in_ms: delay, failures });
        if (!await sleepUnlessAborted(clock, delay, signal)) break;
        this.status.restarts++;
        metrics.deviceRestarts.labels(name).inc();
      }
    }
    this.#setState("stopped");
  }

  /** Releases the plugin instance (ports, child processes); called by stop(). */
  async close(): Promise<void> {
    try {
      await this.#options.instance.close?.();
    } catch (error) {
      this.#options.logger.warn("Device close failed", {
        device: this.#options.name,
        error: errorMessage(error),
      });
    }
  }
}

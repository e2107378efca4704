/**
 * Alert sinks: `log` writes a line, `webhook` POSTs JSON from a bounded
 * queue with timeout, retries and exponential backoff.
 *
 * @module
 */
import {
  backoffDelay,
  type Clock,
  errorMessage,
  type Logger,
  type Random,
  sleepUnlessAborted,
} from "../../core/mod.ts";
import type { AnomalyEvent as CoreAnomalyEvent } from "../../core/mod.ts";

/** An anomaly as received on the bus (published by the `anomaly` handler). */
export type AnomalyEvent = CoreAnomalyEvent;

/** What sinks deliver: a condition started (firing) or cleared (resolved). */
export type Notice =
  | {
    status: "firing";
    device: string;
    metric: string;
    rule: string;
    severity: AnomalyEvent["severity"];
    ts: number;
    /** Alerts of this device and rule held back by the cooldown since the last one sent. */
    suppressed: number;
    anomaly: AnomalyEvent;
  }
  | {
    status: "resolved";
    device: string;
    metric: string;
    rule: string;
    ts: number;
    anomaly_id?: string;
  };

/** Where notices go. */
export interface Sink {
  readonly name: string;
  /** Takes a notice; never throws (delivery problems are logged). */
  deliver(notice: Notice): void;
  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void>;
}

const LEVEL_OF = { info: "info", warning: "warn", critical: "error" } as const;

/** Logs each notice: `error` for critical, `warn` for warning, `info` otherwise and for resolved. */
export function logSink(logger: Logger): Sink {
  return {
    name: "log",
    deliver(notice) {
      if (notice.status === "resolved") {
        logger.info(`Resolved: ${notice.rule} on ${notice.device}/${notice.metric}`, { ...notice });
        return;
      }
      const { anomaly, suppressed } = notice;
      const text =
        `Alert ${anomaly.severity}: ${anomaly.rule} on ${anomaly.device}/${anomaly.metric}` +
        (anomaly.detail ? `: ${anomaly.detail}` : "");
      logger[LEVEL_OF[anomaly.severity]](text, { ...anomaly, suppressed });
    },
    idle: () => Promise.resolve(),
  };
}

/** Settings of a webhook sink. */
export interface WebhookOptions {
  url: string;
  headers: Record<string, string>;
  timeout: number;
  retries: number;
  backoff: number;
  max_backoff: number;
  queue_size: number;
}

/** What a webhook sink needs from its handler. */
export interface WebhookDeps {
  logger: Logger;
  clock: Clock;
  random: Random;
  /** Ends waits and requests (shutdown). */
  signal: AbortSignal;
}

/** Statuses worth another try although they are 4xx. */
const RETRYABLE_4XX = new Set([408, 425, 429]);
/** Shortest time (by the clock) between two "queue full" warnings. */
const DROP_LOG_EVERY_MS = 10_000;

/**
 * POSTs each notice as JSON, one at a time in arrival order. Network errors,
 * timeouts and 5xx (also 408, 425, 429) are retried `retries` times with
 * exponential backoff; other 4xx are permanent: logged, not retried. The
 * queue holds at most `queue_size` notices; further ones are dropped and
 * counted (alerts are best effort per process).
 */
export class WebhookSink implements Sink {
  readonly name: string;
  #options: WebhookOptions;
  #deps: WebhookDeps;
  #queue: Notice[] = [];
  #pump: Promise<void> | undefined;
  #dropped = 0;
  #lastDropLog = -Infinity;
  /** Totals, for tests and logs. */
  delivered = 0;
  failed = 0;

  constructor(options: WebhookOptions, deps: WebhookDeps) {
    this.#options = options;
    this.#deps = deps;
    this.name = `webhook ${new URL(options.url).origin}`;
  }

  get dropped(): number {
    return this.#dropped;
  }

  deliver(notice: Notice): void {
    if (this.#deps.signal.aborted) return;
    if (this.#queue.length >= this.#options.queue_size) {
      this.#dropped++;
      const now = this.#deps.clock.now();
      if (now - this.#lastDropLog >= DROP_LOG_EVERY_MS) {
        this.#lastDropLog = now;
        this.#deps.logger.warn(`Alert queue of "${this.#options.url}" is full: alerts dropped`, {
          dropped: this.#dropped,
          queue_size: this.#options.queue_size,
        });
      }
      return;
    }
    this.#queue.push(notice);
    this.#pump ??= this.#run().finally(() => this.#pump = undefined);
  }

  async idle(): Promise<void> {
    while (this.#pump) await this.#pump;
  }

  async #run(): Promise<void> {
    while (this.#queue.length > 0 && !this.#deps.signal.aborted) {
      await this.#send(this.#queue.shift()!);
    }
  }

  async #send(notice: Notice): Promise<void> {
    const { url, headers, timeout, retries, backoff, max_backoff: max } = this.#options;
    const { logger, clock, random, signal } = this.#deps;
    const body = JSON.stringify(notice);
    for (let attempt = 1;; attempt++) {
      let problem: string;
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeout)]),
        });
        const text = await response.text();
        if (response.ok) {
          this.delivered++;
          return;
        }
        problem = `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ""}`;
        if (response.status < 500 && !RETRYABLE_4XX.has(response.status)) {
          this.failed++;
          logger.error(`Webhook "${url}" refused an alert (not retried): ${problem}`, {
            status: response.status,
            rule: notice.rule,
            device: notice.device,
          });
          return;
        }
      } catch (error) {
        if (signal.aborted) return;
        problem = error instanceof DOMException && error.name === "TimeoutError"
          ? `no answer within ${timeout}ms`
          : errorMessage(error);
      }
      if (attempt > retries) {
        this.failed++;
        logger.error(
          `Cannot deliver an alert to webhook "${url}" after ${attempt} attempts: ${problem}`,
          { rule: notice.rule, device: notice.device },
        );
        return;
      }
      const delay = backoffDelay(
        { max_attempts: retries + 1, delay: backoff, max, jitter: 0.2 },
        attempt,
        random,
      );
      logger.debug(`Webhook "${url}" failed (${problem}); retrying in ${delay}ms`);
      if (!await sleepUnlessAborted(clock, delay, signal)) return;
    }
  }
}

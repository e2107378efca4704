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
  redactText,
  sleepUnlessAborted,
} from "../../core/mod.ts";
import type { AnomalyEvent } from "../../core/mod.ts";

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
    /** Severity of the alert this clears. */
    severity: AnomalyEvent["severity"];
    /** When the cleared condition's alert started. */
    started_at: number;
    ts: number;
    anomaly_id?: string;
  };

/** What became of a notice at one sink. */
export type DeliveryOutcome = "sent" | "failed" | "dropped";

/** Told of every notice a sink is done with (for metrics). */
export type DeliveryReport = (
  notice: Notice,
  outcome: DeliveryOutcome,
  /** From taking the notice to the outcome. */
  seconds: number,
) => void;

/** Where notices go. */
export interface Sink {
  readonly name: string;
  /** Takes a notice; never throws (delivery problems are logged). */
  deliver(notice: Notice): void;
  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void>;
  /** Releases connections. */
  close?(): Promise<void>;
}

const LEVEL_OF = { info: "info", warning: "warn", critical: "error" } as const;

/** Logs each notice: `error` for critical, `warn` for warning, `info` otherwise and for resolved. */
export function logSink(logger: Logger, report: DeliveryReport = () => {}): Sink {
  return {
    name: "log",
    deliver(notice) {
      report(notice, "sent", 0);
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

/** Settings of an Alertmanager sink beyond a webhook's. */
export interface AlertmanagerOptions {
  /** Labels added to every alert. */
  labels: Record<string, string>;
  /** A firing alert's `endsAt` is its start plus this, unless resolved earlier (ms). */
  resolve_after: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The Alertmanager (API v2) alerts of a notice. One condition is one alert:
 * its labels (`alertname`, device, metric, rule, severity and the
 * configured ones) are the same when it fires and when it is resolved, so
 * Alertmanager matches the two; a resolved alert has `endsAt` in the past.
 */
export function alertmanagerAlerts(notice: Notice, options: AlertmanagerOptions): unknown[] {
  const labels = {
    ...options.labels,
    alertname: "TelemetryAnomaly",
    device: notice.device,
    metric: notice.metric,
    rule: notice.rule,
    severity: notice.severity,
  };
  if (notice.status === "resolved") {
    return [{
      labels,
      annotations: { summary: `Resolved: ${notice.rule} on ${notice.device}/${notice.metric}` },
      startsAt: iso(notice.started_at),
      endsAt: iso(Math.max(notice.ts, notice.started_at)),
    }];
  }
  const a = notice.anomaly;
  const annotations: Record<string, string> = {
    summary: `${a.rule} on ${a.device}/${a.metric}` + (a.detail ? `: ${a.detail}` : ""),
    value: String(a.value),
    anomaly_id: a.id,
  };
  if (a.expected_low !== null) annotations.expected_low = String(a.expected_low);
  if (a.expected_high !== null) annotations.expected_high = String(a.expected_high);
  if (a.score !== null) annotations.score = String(a.score);
  if (notice.suppressed > 0) annotations.suppressed = String(notice.suppressed);
  return [{
    labels,
    annotations,
    startsAt: iso(a.ts),
    endsAt: iso(a.ts + options.resolve_after),
  }];
}

/** What a webhook sink needs from its handler. */
export interface WebhookDeps {
  logger: Logger;
  clock: Clock;
  random: Random;
  /** Ends waits and requests (shutdown). */
  signal: AbortSignal;
  /** Told what became of each notice. */
  report?: DeliveryReport;
  /** Told how many notices wait, whenever it changes. */
  queued?: (size: number) => void;
  /** The JSON body of a notice (default: the notice itself). */
  body?: (notice: Notice) => unknown;
  /** The sink's name in logs and metrics, e.g. `webhook <origin>`. */
  name: string;
}

/** How a webhook sink is named in logs and metrics: by its URL's origin (no path, no secrets). */
export function webhookName(url: string): string {
  return `webhook ${new URL(url).origin}`;
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
  #queue: { notice: Notice; at: number }[] = [];
  #pump: Promise<void> | undefined;
  #dropped = 0;
  #lastDropLog = -Infinity;
  /** Totals, for tests and logs. */
  delivered = 0;
  failed = 0;

  constructor(options: WebhookOptions, deps: WebhookDeps) {
    this.#options = options;
    this.#deps = deps;
    this.name = deps.name;
  }

  get dropped(): number {
    return this.#dropped;
  }

  deliver(notice: Notice): void {
    if (this.#deps.signal.aborted) return;
    if (this.#queue.length >= this.#options.queue_size) {
      this.#dropped++;
      this.#deps.report?.(notice, "dropped", 0);
      const now = this.#deps.clock.now();
      if (now - this.#lastDropLog >= DROP_LOG_EVERY_MS) {
        this.#lastDropLog = now;
        this.#deps.logger.warn(
          `Alert queue of "${redactText(this.#options.url)}" is full: alerts dropped`,
          {
            dropped: this.#dropped,
            queue_size: this.#options.queue_size,
          },
        );
      }
      return;
    }
    this.#queue.push({ notice, at: this.#deps.clock.now() });
    this.#deps.queued?.(this.#queue.length);
    this.#pump ??= this.#run().finally(() => this.#pump = undefined);
  }

  async idle(): Promise<void> {
    while (this.#pump) await this.#pump;
  }

  async #run(): Promise<void> {
    while (this.#queue.length > 0 && !this.#deps.signal.aborted) {
      const { notice, at } = this.#queue.shift()!;
      this.#deps.queued?.(this.#queue.length);
      const outcome = await this.#send(notice);
      if (outcome) this.#deps.report?.(notice, outcome, (this.#deps.clock.now() - at) / 1000);
    }
  }

  /** Sends one notice with retries; `undefined` when shutdown cut it short. */
  async #send(notice: Notice): Promise<DeliveryOutcome | undefined> {
    const { url, headers, timeout, retries, backoff, max_backoff: max } = this.#options;
    // Webhook URLs often carry their credential (Slack's path, ?api_key=): never log them whole.
    const shown = redactText(url);
    const { logger, clock, random, signal } = this.#deps;
    const body = JSON.stringify(this.#deps.body ? this.#deps.body(notice) : notice);
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
          return "sent";
        }
        problem = `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ""}`;
        if (response.status < 500 && !RETRYABLE_4XX.has(response.status)) {
          this.failed++;
          logger.error(`Webhook "${shown}" refused an alert (not retried): ${problem}`, {
            status: response.status,
            rule: notice.rule,
            device: notice.device,
          });
          return "failed";
        }
      } catch (error) {
        if (signal.aborted) return undefined;
        problem = error instanceof DOMException && error.name === "TimeoutError"
          ? `no answer within ${timeout}ms`
          : errorMessage(error);
      }
      if (attempt > retries) {
        this.failed++;
        logger.error(
          `Cannot deliver an alert to webhook "${shown}" after ${attempt} attempts: ${problem}`,
          { rule: notice.rule, device: notice.device },
        );
        return "failed";
      }
      const delay = backoffDelay(
        { max_attempts: retries + 1, delay: backoff, max, jitter: 0.2 },
        attempt,
        random,
      );
      logger.debug(`Webhook "${shown}" failed (${problem}); retrying in ${delay}ms`);
      if (!await sleepUnlessAborted(clock, delay, signal)) return undefined;
    }
  }
}

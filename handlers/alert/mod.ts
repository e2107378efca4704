/**
 * The `alert` handler: turns anomalies from the process event bus (and,
 * optionally, from earlier handlers of its chain) into notices for a log
 * and webhooks, with a cooldown per device+rule and resolved notices.
 *
 * @module
 */
import {
  type AnomalyEvent,
  defineHandler,
  duration,
  type HandlerContext,
  type Sample,
  SEVERITIES,
  sleepUnlessAborted,
  z,
} from "../../core/mod.ts";
import {
  alertmanagerAlerts,
  type DeliveryReport,
  logSink,
  type Notice,
  type Sink,
  webhookName,
  type WebhookOptions,
  WebhookSink,
} from "./_sinks.ts";
import { connectMqttSink, mqttSinkName } from "./_mqtt_sink.ts";

export type { Notice } from "./_sinks.ts";

const RANK = { info: 0, warning: 1, critical: 2 } as const;

const logSinkSchema = z.strictObject({
  type: z.literal("log").describe("Log each alert (critical: error, warning: warn, else info)"),
});

/** Delivery settings shared by the HTTP sinks. */
const httpDelivery = {
  headers: z.record(z.string(), z.string()).default({}).describe(
    'Extra request headers, e.g. `Authorization: "Bearer ${WEBHOOK_TOKEN}"`',
  ),
  timeout: duration({ timer: true }).pipe(z.number().min(1)).prefault("5s").describe(
    "Longest wait for an answer to one request",
  ),
  retries: z.int().min(0).max(100).default(5).describe(
    "Further attempts after a network error, timeout, 5xx, 408, 425 or 429 (other 4xx: none)",
  ),
  backoff: duration({ timer: true }).pipe(z.number().min(1)).prefault("1s").describe(
    "Delay before the first retry; doubles per attempt (±20% jitter)",
  ),
  max_backoff: duration({ timer: true }).pipe(z.number().min(1)).prefault("1m").describe(
    "Longest delay between attempts",
  ),
  queue_size: z.int().positive().default(1000).describe(
    "Most alerts waiting for this sink; further ones are dropped and counted",
  ),
};

const httpUrl = z.url({ protocol: /^https?$/, error: "Expected an http:// or https:// URL" });

const webhookSinkSchema = z.strictObject({
  type: z.literal("webhook").describe("POST each alert as JSON"),
  url: httpUrl.describe("Where alerts are POSTed"),
  ...httpDelivery,
});

const alertmanagerSinkSchema = z.strictObject({
  type: z.literal("alertmanager").describe(
    "POST each alert to Prometheus Alertmanager (API v2), and its resolution with endsAt",
  ),
  url: httpUrl.describe("Alertmanager's base URL, e.g. http://alertmanager:9093"),
  labels: z.record(z.string(), z.string()).default({}).describe(
    "Labels added to every alert for routing, e.g. { team: maintenance, site: north }",
  ),
  resolve_after: duration().pipe(z.number().min(60_000)).prefault("1h").describe(
    "A firing alert ends by itself this long after its anomaly unless resolved earlier " +
      "(in case this process is gone when the condition clears)",
  ),
  ...httpDelivery,
});

const mqttSinkSchema = z.strictObject({
  type: z.literal("mqtt").describe(
    "Publish each notice as JSON to an MQTT topic (retained: subscribers see the latest state)",
  ),
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\/[^\s]+$/, {
    error: 'Expected a broker URL such as "mqtt://127.0.0.1:1883"',
  }).describe("Broker URL, e.g. ${MQTT_URL:-mqtt://127.0.0.1:1883}"),
  topic: z.string().min(1).default("telemetry/alerts/{device}/{rule}").describe(
    "Topic of each notice; {device}, {metric}, {rule}, {severity} and {status} are filled in",
  ),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1).describe(
    "Publish QoS; 1 and 2 are kept by the client while the broker is away",
  ),
  retain: z.boolean().default(true).describe(
    "Retain each notice, so a new subscriber gets every condition's latest state",
  ),
  username: z.string().optional().describe("User name, if the broker wants one"),
  password: z.string().optional().describe("Password; use ${MQTT_PASSWORD}"),
  queue_size: z.int().positive().default(1000).describe(
    "Most notices waiting for the broker; further ones are dropped and counted",
  ),
});

const configSchema = z.strictObject({
  sinks: z.array(
    z.discriminatedUnion("type", [
      logSinkSchema,
      webhookSinkSchema,
      alertmanagerSinkSchema,
      mqttSinkSchema,
    ], {
      error: (issue) =>
        issue.code === "invalid_union"
          ? 'Expected "type" to be "log", "webhook", "alertmanager" or "mqtt"'
          : undefined,
    }),
  )
    .prefault([{ type: "log" }]).describe(
      "Where alerts go (`type`: log, webhook, alertmanager or mqtt)",
    ),
  min_severity: z.enum(SEVERITIES).default("info").describe(
    "Anomalies below this severity raise no alert",
  ),
  cooldown: duration().prefault("5m").describe(
    "After an alert for a device and rule, further ones for the same pair within this time " +
      "are only counted (reported as `suppressed` on the next one sent)",
  ),
  send_resolved: z.boolean().default(true).describe(
    "Send a resolved notice when a condition that raised an alert clears",
  ),
  read_published: z.boolean().default(true).describe(
    "Also take anomalies published by earlier handlers of the chain (duplicates by id are " +
      "sent once)",
  ),
  max_keys: z.int().positive().default(10_000).describe(
    "Most device+rule pairs (cooldowns) and anomaly ids (de-duplication) remembered; the " +
      "oldest are forgotten beyond it",
  ),
  flush_timeout: duration({ timer: true }).prefault("5s").describe(
    "Longest wait at shutdown for queued and in-flight deliveries",
  ),
});

/** The validated configuration of `alert`. */
export type AlertConfig = z.output<typeof configSchema>;

interface KeyState {
  lastSent: number;
  firing: boolean;
  suppressed: number;
  /** Of the alert last sent, for its resolved notice. */
  severity: AnomalyEvent["severity"];
  startedAt: number;
}

function isAnomaly(item: unknown): item is AnomalyEvent {
  if (typeof item !== "object" || item === null) return false;
  const a = item as Record<string, unknown>;
  return typeof a.id === "string" && typeof a.device === "string" &&
    typeof a.metric === "string" && typeof a.rule === "string" && typeof a.ts === "number" &&
    (a.severity === "info" || a.severity === "warning" || a.severity === "critical");
}

function isResolved(
  item: unknown,
): item is { device: string; metric: string; rule: string; ts: number; anomaly_id?: string } {
  if (typeof item !== "object" || item === null) return false;
  const r = item as Record<string, unknown>;
  return typeof r.device === "string" && typeof r.metric === "string" &&
    typeof r.rule === "string" && typeof r.ts === "number";
}

/** Adds `key` as most recent, forgetting the oldest beyond `cap`. */
function remember<V>(map: Map<string, V>, key: string, value: V, cap: number): void {
  map.delete(key);
  if (map.size >= cap) map.delete(map.keys().next().value!);
  map.set(key, value);
}

export default defineHandler({
  name: "alert",
  summary: "Sends alerts for anomalies to a log, webhooks, Alertmanager and MQTT, with cooldown " +
    "and resolved notices",
  version: "0.1.0",
  description: "Subscribes to the process event bus (`anomaly`, `anomaly.resolved`) when " +
    "created, so it must be in some chain to run; samples pass through unchanged. Alerts are " +
    "best effort per process: held in a bounded in-memory queue, not persisted.",
  config: configSchema,
  async create(config, ctx) {
    const { clock, logger } = ctx;
    const stopped = new AbortController();
    const signal = AbortSignal.any([ctx.signal, stopped.signal]);
    const delivered = ctx.metrics.counter(
      "alerts_total",
      "Alert notices a sink is done with, by sink, status (firing, resolved) and outcome " +
        "(sent, failed, dropped)",
      ["sink", "status", "outcome"],
    );
    const deliverySeconds = ctx.metrics.histogram(
      "alert_delivery_seconds",
      "Time from an alert notice to a webhook's answer, retries included",
      ["sink"],
      [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
    );
    const queuedGauge = ctx.metrics.gauge(
      "alert_queue",
      "Alert notices waiting for a webhook",
      ["sink"],
    );
    const skipped = ctx.metrics.counter(
      "alerts_skipped_total",
      "Anomalies that raised no alert, by reason (cooldown, below_min_severity)",
      ["reason"],
    );
    // Series exist at 0 from start-up: dashboards show 0, not "No data".
    for (const reason of ["cooldown", "below_min_severity"]) skipped.inc({ reason }, 0);
    const reporter = (sink: string): DeliveryReport => {
      for (const status of ["firing", "resolved"]) {
        for (const outcome of ["sent", "failed", "dropped"]) {
          delivered.inc({ sink, status, outcome }, 0);
        }
      }
      return (notice, outcome, seconds) => {
        delivered.inc({ sink, status: notice.status, outcome });
        if (outcome === "sent" && sink !== "log") deliverySeconds.observe({ sink }, seconds);
      };
    };
    /** A sink POSTing `body(notice)` (default: the notice), named `sink` in logs and metrics. */
    function httpSink(
      options: WebhookOptions,
      sink: string,
      body?: (notice: Notice) => unknown,
    ): WebhookSink {
      queuedGauge.set({ sink }, 0);
      return new WebhookSink(options, {
        logger,
        clock,
        random: ctx.random,
        signal,
        name: sink,
        ...(body ? { body } : {}),
        report: reporter(sink),
        queued: (size) => queuedGauge.set({ sink }, size),
      });
    }
    const sinks: Sink[] = await Promise.all(config.sinks.map(async (s, i): Promise<Sink> => {
      if (s.type === "log") return logSink(logger, reporter("log"));
      if (s.type === "mqtt") {
        const sink = mqttSinkName(s.url);
        return await connectMqttSink(s, {
          logger,
          report: reporter(sink),
          now: () => clock.now(),
          clientId: `telemetryhub-${ctx.name}-alerts-${i}-${crypto.randomUUID().slice(0, 8)}`,
        });
      }
      if (s.type === "webhook") return httpSink(s, webhookName(s.url));
      const url = new URL("api/v2/alerts", `${s.url.replace(/\/$/, "")}/`).href;
      return httpSink(
        { ...s, url },
        `alertmanager ${new URL(s.url).origin}`,
        (notice) => alertmanagerAlerts(notice, s),
      );
    }));
    const keys = new Map<string, KeyState>();
    const seen = new Map<string, true>();

    function send(notice: Notice): void {
      for (const sink of sinks) sink.deliver(notice);
    }

    function onAnomaly(item: unknown): void {
      if (!isAnomaly(item)) {
        logger.warn("Ignored a malformed anomaly event");
        return;
      }
      if (seen.has(item.id)) return;
      remember(seen, item.id, true, config.max_keys);
      if (RANK[item.severity] < RANK[config.min_severity]) {
        skipped.inc({ reason: "below_min_severity" });
        return;
      }
      const key = `${item.device}\u0000${item.rule}`;
      const now = clock.now();
      const state = keys.get(key);
      if (state && now - state.lastSent < config.cooldown) {
        state.suppressed++;
        skipped.inc({ reason: "cooldown" });
        return;
      }
      const suppressed = state?.suppressed ?? 0;
      remember(keys, key, {
        lastSent: now,
        firing: true,
        suppressed: 0,
        severity: item.severity,
        startedAt: item.ts,
      }, config.max_keys);
      send({
        status: "firing",
        device: item.device,
        metric: item.metric,
        rule: item.rule,
        severity: item.severity,
        ts: item.ts,
        suppressed,
        anomaly: item,
      });
    }

    function onResolved(item: unknown): void {
      if (!isResolved(item)) return;
      const state = keys.get(`${item.device}\u0000${item.rule}`);
      // Only conditions whose alert went out get a resolved notice; a flapping pair in its
      // cooldown so sends neither.
      if (!state?.firing) return;
      state.firing = false;
      if (!config.send_resolved) return;
      const notice: Notice = {
        status: "resolved",
        device: item.device,
        metric: item.metric,
        rule: item.rule,
        severity: state.severity,
        started_at: state.startedAt,
        ts: item.ts,
      };
      if (item.anomaly_id !== undefined) notice.anomaly_id = item.anomaly_id;
      send(notice);
    }

    const unsubscribe = [
      ctx.events.subscribe("anomaly", onAnomaly),
      ctx.events.subscribe("anomaly.resolved", onResolved),
    ];

    return {
      handle(_samples: readonly Sample[], hctx: HandlerContext): void {
        if (config.read_published) { for (const a of hctx.published("anomaly")) onAnomaly(a); }
      },
      async flush(): Promise<void> {
        const give = new AbortController();
        const drained = Promise.all(sinks.map((s) => s.idle()));
        const timedOut = sleepUnlessAborted(clock, config.flush_timeout, give.signal);
        const finished = await Promise.race([drained.then(() => true), timedOut.then(() => false)]);
        give.abort();
        if (!finished) {
          logger.warn(`Alerts still undelivered after ${config.flush_timeout}ms; giving up`);
        }
        for (const sink of sinks) {
          if (sink instanceof WebhookSink && sink.dropped > 0) {
            logger.warn(`Alert queue of ${sink.name} dropped alerts`, { dropped: sink.dropped });
          }
        }
      },
      async close(): Promise<void> {
        for (const off of unsubscribe) off();
        stopped.abort();
        await Promise.all(sinks.map((sink) => sink.close?.()));
      },
    };
  },
});

/**
 * A process-wide, in-memory event bus for plugins: derived events (an
 * anomaly, a resolved condition) that are not tied to one task's handler
 * chain, such as a silent device noticed by a timer. Delivery is
 * synchronous, best effort and per process; a subscriber that throws is
 * logged and does not affect the publisher or other subscribers.
 *
 * @module
 */
import { errorMessage } from "./errors.ts";
import type { Logger } from "./log.ts";

/** Publish/subscribe by topic. */
export interface EventBus {
  /** Hands `item` to every current subscriber of `topic`. */
  publish(topic: string, item: unknown): void;
  /** Calls `listener` for each item published on `topic`; returns an unsubscribe function. */
  subscribe(topic: string, listener: (item: unknown) => void): () => void;
}

/**
 * Creates a bus.
 *
 * @example
 * ```ts
 * import { createEventBus } from "./events.ts";
 * import { silentLogger } from "./log.ts";
 * const bus = createEventBus(silentLogger);
 * const off = bus.subscribe("anomaly", (a) => console.log(a));
 * bus.publish("anomaly", { device: "boiler" });
 * off();
 * ```
 */
export function createEventBus(logger: Logger): EventBus {
  const topics = new Map<string, Set<(item: unknown) => void>>();
  return {
    publish(topic, item) {
      const listeners = topics.get(topic);
      if (!listeners) return;
      for (const listener of [...listeners]) {
        try {
          listener(item);
        } catch (error) {
          logger.error("Event subscriber failed", { topic, error: errorMessage(error) });
        }
      }
    },
    subscribe(topic, listener) {
      let set = topics.get(topic);
      if (!set) topics.set(topic, set = new Set());
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) topics.delete(topic);
      };
    },
  };
}

/** Bus topic of anomalies (published by the `anomaly` handler, read by `alert`). */
export const ANOMALY_TOPIC = "anomaly";
/** Bus topic of anomaly conditions that cleared. */
export const ANOMALY_RESOLVED_TOPIC = "anomaly.resolved";

/**
 * How serious an anomaly is, least first.
 *
 * @example
 * ```ts
 * import { SEVERITIES } from "@telemetryhub/telemetryhub";
 * SEVERITIES.indexOf("critical"); // 2
 * ```
 */
export const SEVERITIES = ["info", "warning", "critical"] as const;
/** How serious an anomaly is: one of {@link SEVERITIES}. */
export type Severity = (typeof SEVERITIES)[number];

/**
 * An anomaly as published on {@link ANOMALY_TOPIC} (and to later handlers
 * of the chain): the contract between detectors and alert sinks, built-in
 * or third-party.
 */
export interface AnomalyEvent {
  /** Deterministic (rule, device, metric, time), so redelivery stores it once. */
  id: string;
  /** Device of the sample that showed it (or of the silent device). */
  device: string;
  /** Metric of that sample. */
  metric: string;
  /** Milliseconds since the epoch of the sample that showed it. */
  ts: number;
  /**
   * The value judged: the sample's value, or for a rule on silence the
   * seconds without a sample.
   */
  value: number;
  /** Lower end of the expected band; `null` when open. */
  expected_low: number | null;
  /** Upper end of the expected band; `null` when open. */
  expected_high: number | null;
  /** How far outside the band (rule-specific, e.g. a z-score). */
  score: number;
  /** Name of the rule that fired. */
  rule: string;
  /** The severity configured on that rule. */
  severity: Severity;
  /** A human-readable line on what was seen, e.g. `Value 98 is above 90`; shown by alert sinks. */
  detail?: string;
}

/** A condition that cleared, published on {@link ANOMALY_RESOLVED_TOPIC}. */
export interface AnomalyResolvedEvent {
  /** Id of the anomaly that opened the condition. */
  anomaly_id: string;
  /** Device of the anomaly. */
  device: string;
  /** Metric of the anomaly. */
  metric: string;
  /** Name of the rule whose condition cleared. */
  rule: string;
  /** Milliseconds since the epoch when it cleared: the first normal sample's `ts`, or when a silent device was heard again. */
  ts: number;
}

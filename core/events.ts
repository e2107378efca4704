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

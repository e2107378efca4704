/**
 * Helpers for testing plugins and the runtime: a fake clock, recording
 * loggers, a plugin context and the broker conformance suite. Import from
 * tests only.
 *
 * @module
 */
import { createEventBus } from "./events.ts";
import { createLogger, type Logger, silentLogger } from "./log.ts";
import client from "prom-client";
import type { HandlerContext, PluginContext, PluginKind, PluginMetrics } from "./plugin.ts";
import { seededRandom } from "./random.ts";
import { pluginMetrics } from "./plugin_metrics.ts";
import { chainTopics } from "./chain.ts";
import { FakeClock } from "./_fake_clock.ts";

export { brokerConformance, type BrokerFixture } from "./_conformance.ts";
export { FakeClock, flushMicrotasks, settlePromises } from "./_fake_clock.ts";

/**
 * A logger that keeps its lines (parsed JSON) for assertions.
 *
 * @example
 * ```ts
 * import { recordingLogger } from "@telemetryhub/telemetryhub/testing";
 * const { logger, lines } = recordingLogger();
 * logger.warn("Device down", { device: "boiler" });
 * lines[0]?.msg; // "Device down"
 * ```
 */
export function recordingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: "debug",
    format: "json",
    sink: (line) => lines.push(JSON.parse(line)),
  });
  return { logger, lines };
}

/** Plugin metrics on a registry of their own, read back by {@link RecordedMetrics.value}. */
export interface RecordedMetrics {
  /** Hand these to the plugin under test (as its context's `metrics`). */
  metrics: PluginMetrics;
  /**
   * The sum of the series of `telemetry_<name>` whose labels include
   * `labels` (a histogram's observation count); 0 when there are none.
   */
  value(name: string, labels?: Record<string, string>): Promise<number>;
  /** The Prometheus text of every metric recorded. */
  text(): Promise<string>;
}

/**
 * Metrics for a plugin under test, as the runtime would give them to
 * component `component` of `kind`.
 *
 * @example
 * ```ts
 * import { recordingMetrics, testContext } from "./testing.ts";
 * const recorded = recordingMetrics();
 * const ctx = testContext({ metrics: recorded.metrics });
 * ctx.metrics.counter("widgets_total", "Widgets", ["color"]).inc({ color: "red" });
 * console.log(await recorded.value("widgets_total", { color: "red" })); // 1
 * ```
 */
export function recordingMetrics(
  kind: PluginKind = "handler",
  component = "test",
): RecordedMetrics {
  const registry = new client.Registry();
  return {
    metrics: pluginMetrics(registry, kind, component),
    async value(name, labels = {}) {
      const metric = registry.getSingleMetric(`telemetry_${name}`);
      if (!metric) return 0;
      const data = await metric.get();
      const wanted = String(data.type) === "histogram" ? `telemetry_${name}_count` : undefined;
      let sum = 0;
      for (const v of data.values as { value: number; labels: object; metricName?: string }[]) {
        if (wanted !== undefined && v.metricName !== wanted) continue;
        const have = v.labels as Record<string, unknown>;
        if (Object.entries(labels).every(([k, x]) => String(have[k]) === x)) sum += v.value;
      }
      return sum;
    },
    text: () => registry.metrics(),
  };
}

/**
 * A plugin context for tests; override any part.
 *
 * @example
 * ```ts
 * import { defineHandler, z } from "@telemetryhub/telemetryhub";
 * import { recordingMetrics, testContext } from "@telemetryhub/telemetryhub/testing";
 * const plugin = defineHandler({
 *   name: "count",
 *   summary: "Counts samples",
 *   config: z.strictObject({}),
 *   create: (_config, ctx) => {
 *     const seen = ctx.metrics.counter("count_samples_total", "Samples seen");
 *     return { handle: (samples) => seen.inc({}, samples.length) };
 *   },
 * });
 * const recorded = recordingMetrics("handler", "count");
 * const handler = await plugin.create({}, testContext({ name: "count", metrics: recorded.metrics }));
 * ```
 */
export function testContext(overrides: Partial<PluginContext> = {}): PluginContext {
  return {
    metrics: recordingMetrics("handler", overrides.name ?? "test").metrics,
    name: "test",
    logger: recordingLogger().logger,
    clock: new FakeClock(),
    random: seededRandom(1),
    signal: new AbortController().signal,
    baseDir: Deno.cwd(),
    // A test that moves baseDir (to a temporary directory) moves the data with it.
    dataDir: overrides.baseDir ?? Deno.cwd(),
    events: createEventBus(silentLogger),
    ...overrides,
  };
}

/**
 * A handler context for calling `handle()` directly in tests; override any
 * part. `publish`/`published` work as in the runtime (per context).
 *
 * @example
 * ```ts
 * import { handlerContext } from "./testing.ts";
 * const ctx = handlerContext({ attempt: 2 });
 * ctx.publish("anomaly", { id: "a" });
 * ctx.published("anomaly").length; // 1
 * ```
 */
export function handlerContext(overrides: Partial<HandlerContext> = {}): HandlerContext {
  return {
    task: {
      id: "task-1",
      type: "telemetry.analyze",
      payload: { samples: [] },
      attempts: 0,
      created_at: 0,
    },
    attempt: 1,
    pipeline: "test",
    signal: new AbortController().signal,
    clock: new FakeClock(),
    ...chainTopics(),
    ...overrides,
  };
}

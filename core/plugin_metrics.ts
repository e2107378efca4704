/**
 * Metrics that plugins declare through their context: named, labelled and
 * checked by the runtime.
 *
 * @module
 */
import client from "prom-client";
import type {
  MetricLabels,
  PluginCounter,
  PluginGauge,
  PluginHistogram,
  PluginKind,
  PluginMetrics,
} from "./plugin.ts";
import { labelValue } from "./_metric_labels.ts";

/** Plugin metric names: after `telemetry_`, lower-case words joined by `_`. */
const PLUGIN_METRIC_NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const LABEL_NAME = /^[a-z_][a-z0-9_]*$/;

type MetricKind = "counter" | "gauge" | "histogram";

/**
 * {@link PluginMetrics} on `registry` for one component: names get the
 * `telemetry_` prefix and series a `<kind>="<component>"` label. A metric
 * asked for twice with the same kind and labels is the same metric. Label
 * values pass through {@link labelValue}; a `device` label's through
 * `deviceLabel` (the runtime's cap).
 */
export function pluginMetrics(
  registry: client.Registry,
  kind: PluginKind,
  component: string,
  deviceLabel: (device: string) => string = labelValue,
): PluginMetrics {
  function metric(
    type: MetricKind,
    name: string,
    help: string,
    labels: readonly string[],
    buckets?: readonly number[],
  ): client.Metric<string> {
    const where = `Metric "${name}" of ${kind} "${component}"`;
    if (!PLUGIN_METRIC_NAME.test(name) || name.startsWith("telemetry_")) {
      throw new Error(
        `${where}: name it in lower_snake_case without the telemetry_ prefix, e.g. "anomalies_total"`,
      );
    }
    if (type === "counter" && !name.endsWith("_total")) {
      throw new Error(`${where}: a counter's name ends in "_total"`);
    }
    for (const label of labels) {
      if (!LABEL_NAME.test(label) || label === kind || label.startsWith("__")) {
        throw new Error(`${where}: "${label}" cannot be a label name`);
      }
    }
    const full = `telemetry_${name}`;
    const labelNames = [kind, ...labels];
    const existing = registry.getSingleMetric(full) as
      | (client.Metric<string> & { labelNames?: string[]; type?: string })
      | undefined;
    if (existing) {
      const same = existing.type === type &&
        JSON.stringify(existing.labelNames ?? []) === JSON.stringify(labelNames);
      if (!same) {
        throw new Error(
          `${where}: "${full}" is already registered as a ${existing.type} with labels ` +
            `${JSON.stringify(existing.labelNames ?? [])}`,
        );
      }
      return existing;
    }
    const options = { name: full, help, labelNames, registers: [registry] };
    if (type === "counter") return new client.Counter(options);
    if (type === "gauge") return new client.Gauge(options);
    return new client.Histogram({ ...options, ...(buckets ? { buckets: [...buckets] } : {}) });
  }
  const values = (labels: MetricLabels<string> | undefined) => {
    const out: Record<string, string | number> = { [kind]: component };
    for (const [k, v] of Object.entries(labels ?? {})) {
      if (typeof v === "number") out[k] = v;
      else if (v !== undefined) {
        out[k] = k === "device" ? deviceLabel(String(v)) : labelValue(String(v));
      }
    }
    return out;
  };
  return {
    counter<L extends string>(name: string, help: string, labels: readonly L[] = []) {
      const c = metric("counter", name, help, labels) as client.Counter<string>;
      return {
        inc: (l?: MetricLabels<L>, value = 1) => c.inc(values(l), value),
      } satisfies PluginCounter<L>;
    },
    gauge<L extends string>(name: string, help: string, labels: readonly L[] = []) {
      const g = metric("gauge", name, help, labels) as client.Gauge<string>;
      return {
        set: (l: MetricLabels<L>, value: number) => g.set(values(l), value),
        inc: (l?: MetricLabels<L>, value = 1) => g.inc(values(l), value),
        dec: (l?: MetricLabels<L>, value = 1) => g.dec(values(l), value),
      } satisfies PluginGauge<L>;
    },
    histogram<L extends string>(
      name: string,
      help: string,
      labels: readonly L[] = [],
      buckets?: readonly number[],
    ) {
      const h = metric("histogram", name, help, labels, buckets) as client.Histogram<string>;
      return {
        observe: (l: MetricLabels<L>, value: number) => h.observe(values(l), value),
      } satisfies PluginHistogram<L>;
    },
  };
}

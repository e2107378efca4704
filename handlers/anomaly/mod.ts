/**
 * The `anomaly` handler: threshold, rate, rolling z-score, EWMA control
 * chart, stuck-sensor and silent-device rules per device and metric.
 * Anomalies go to later handlers (`ctx.publish("anomaly", …)`), to the
 * process bus (`anomaly`, `anomaly.resolved`) and, with `store: true`, to
 * the `anomalies` table.
 *
 * @module
 */
import { defineHandler, duration, z } from "../../core/mod.ts";
import { databaseConfig, isolateNeeds, openDatabase } from "../_db/mod.ts";
import { createAnomalyEngine } from "./_handler.ts";
import { DEFAULT_RULES, ruleName, ruleSchema } from "./_rules.ts";

export { anomalyId, type AnomalySink } from "./_handler.ts";
export type { Rule } from "./_rules.ts";

const configSchema = z.strictObject({
  rules: z.array(ruleSchema).prefault([...DEFAULT_RULES]).describe(
    "Detection rules (`kind`: threshold, rate, zscore, ewma, stuck, silent); default: zscore, " +
      "stuck after 30 samples and silent after 1m, for every device and metric",
  ).superRefine((rules, ctx) => {
    const seen = new Map<string, number>();
    rules.forEach((rule, i) => {
      const name = ruleName(rule);
      const first = seen.get(name);
      if (first === undefined) seen.set(name, i);
      else {
        ctx.addIssue({
          code: "custom",
          path: [i, "name"],
          message: `Rule name "${name}" is also the name of rule ${first}; give one a "name"`,
        });
      }
    });
  }),
  max_series: z.int().positive().default(10_000).describe(
    "Most device+metric series (and devices watched for silence) with detector state; the " +
      "idlest is forgotten beyond it",
  ),
  check_interval: duration({ timer: true }).pipe(z.number().min(1)).prefault("1s").describe(
    "How often silent devices are looked for",
  ),
  store: z.boolean().default(true).describe(
    "Store anomalies in the `anomalies` table of the database below",
  ),
  ...databaseConfig(),
});

/** The validated configuration of `anomaly`. */
export type AnomalyConfig = z.output<typeof configSchema>;

export default defineHandler({
  name: "anomaly",
  summary: "Finds anomalies: thresholds, rate, z-score, EWMA, stuck sensors, silent devices",
  version: "0.1.0",
  description: "Judges each sample against the rules matching its device and metric. An " +
    "anomaly is published to later handlers of the chain and on the process event bus (topic " +
    "`anomaly`; `anomaly.resolved` when the condition clears) and stored when `store` is on. " +
    "Detector state is per process, bounded by `max_series`.",
  config: configSchema,
  async create(config, ctx) {
    const sink = config.store ? await openDatabase(config, ctx) : undefined;
    return Object.assign(createAnomalyEngine({ ...config, sink }, ctx), isolateNeeds(sink));
  },
});

/**
 * The rule schema of `anomaly`: one entry per rule, told apart by `kind`.
 *
 * @module
 */
import { duration, SEVERITIES, z } from "../../core/mod.ts";

const common = {
  name: z.string().regex(/^[A-Za-z0-9_.:@*?-]+$/, {
    error: "Use letters, digits and _ . : @ - only",
  }).optional().describe(
    "Name recorded as the anomaly's `rule` (part of its id: keep it stable); default " +
      "`<kind>`, plus `:<metric>` and `@<device>` when those are not `*`",
  ),
  device: z.string().min(1).default("*").describe("Device name or glob (`*`, `?`)"),
  metric: z.string().min(1).default("*").describe("Metric name or glob (`*`, `?`)"),
  severity: z.enum(SEVERITIES).default("warning").describe("Severity of the anomalies found"),
};

const thresholdRule = z.strictObject({
  kind: z.literal("threshold").describe(
    "Value above `above` or below `below` (both: outside the band)",
  ),
  ...common,
  above: z.number().finite().optional().describe("Anomalous when the value is greater"),
  below: z.number().finite().optional().describe("Anomalous when the value is smaller"),
}).refine((r) => r.above !== undefined || r.below !== undefined, {
  error: 'A threshold rule needs "above", "below" or both',
}).refine((r) => r.above === undefined || r.below === undefined || r.below <= r.above, {
  error: '"below" must not be greater than "above"',
  path: ["below"],
});

const rateRule = z.strictObject({
  kind: z.literal("rate").describe("Change per second since the previous sample too fast"),
  ...common,
  max_per_second: z.number().positive().describe(
    "Largest allowed absolute change per second between consecutive samples",
  ),
});

const zscoreRule = z.strictObject({
  kind: z.literal("zscore").describe("Rolling z-score against the previous `window` samples"),
  ...common,
  window: z.int().min(3).max(100_000).default(60).describe("Samples in the rolling window"),
  threshold: z.number().positive().default(4).describe(
    "Anomalous when |value − mean| exceeds this many standard deviations of the window",
  ),
  warmup: z.int().min(2).optional().describe(
    "Samples seen before the rule judges; default `window`",
  ),
});

const ewmaRule = z.strictObject({
  kind: z.literal("ewma").describe(
    "EWMA control chart: the smoothed value outside mean ± k·σ·√(α/(2−α)) of the baseline",
  ),
  ...common,
  alpha: z.number().gt(0).max(1).default(0.1).describe(
    "Smoothing weight of the newest sample (λ); small values catch small, slow shifts",
  ),
  k: z.number().positive().default(3.5).describe("Width of the control limits in sigmas"),
  warmup: z.int().min(2).default(100).describe(
    "Samples that set the baseline mean and sigma before the rule judges",
  ),
  baseline_window: z.int().min(2).default(1000).describe(
    "The baseline keeps learning from in-control samples, weighted as over this many samples",
  ),
  relearn_after: z.int().min(0).default(1000).describe(
    "After this many consecutive out-of-control samples the baseline is learnt again (a lasting " +
      "new level becomes normal and the condition resolves); 0 never",
  ),
});

const stuckRule = z.strictObject({
  kind: z.literal("stuck").describe("Value unchanged for `samples` samples or for `duration`"),
  ...common,
  samples: z.int().min(2).optional().describe("Consecutive unchanged samples that make it stuck"),
  duration: duration().pipe(z.number().positive()).optional().describe(
    "Time (by sample timestamps) unchanged that makes it stuck",
  ),
  tolerance: z.number().nonnegative().default(0).describe(
    "Largest difference still counted as unchanged",
  ),
}).refine((r) => r.samples !== undefined || r.duration !== undefined, {
  error: 'A stuck rule needs "samples", "duration" or both',
});

const silentRule = z.strictObject({
  kind: z.literal("silent").describe(
    "No sample from a device (of matching metrics) for `after`; checked on a timer",
  ),
  ...common,
  after: duration().pipe(z.number().positive()).describe("Silence that makes an anomaly"),
});

/** One rule of the `rules` list. */
export const ruleSchema = z.discriminatedUnion("kind", [
  thresholdRule,
  rateRule,
  zscoreRule,
  ewmaRule,
  stuckRule,
  silentRule,
], {
  error: (issue) =>
    issue.code === "invalid_union"
      ? 'Expected "kind" to be one of "threshold", "rate", "zscore", "ewma", "stuck", "silent"'
      : undefined,
});

/** A validated rule. */
export type Rule = z.output<typeof ruleSchema>;
/** A rule of one kind. */
export type RuleOf<K extends Rule["kind"]> = Extract<Rule, { kind: K }>;

/** The name a rule's anomalies carry. */
export function ruleName(rule: Rule): string {
  if (rule.name !== undefined) return rule.name;
  let name: string = rule.kind;
  if (rule.metric !== "*") name += `:${rule.metric}`;
  if (rule.device !== "*") name += `@${rule.device}`;
  return name;
}

/**
 * Rules used when `rules` is not given. No `ewma`: its fixed baseline suits steady processes,
 * and on a signal with a daily or seasonal swing it would report the swing.
 */
export const DEFAULT_RULES = [
  { kind: "zscore" },
  { kind: "stuck", samples: 30 },
  { kind: "silent", after: "1m" },
] as const;

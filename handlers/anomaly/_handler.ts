/**
 * The anomaly handler's engine: per-series detectors, the silence timer,
 * publishing and storing. `mod.ts` wires it to the configured database;
 * tests give it a fake {@link AnomalySink}.
 *
 * @module
 */
import {
  ANOMALY_RESOLVED_TOPIC,
  ANOMALY_TOPIC,
  type AnomalyEvent,
  type AnomalyResolvedEvent,
  errorMessage,
  globMatcher,
  type HandlerContext,
  type HandlerInstance,
  type PluginContext,
  RetryableError,
  type Sample,
  seedFrom,
  sleepUnlessAborted,
} from "../../core/mod.ts";
import { createDetector, type Detector, type Finding } from "./_detectors.ts";
import { type Rule, ruleName, type RuleOf } from "./_rules.ts";

/** Where anomalies are stored. Inserting must be idempotent by `id`. */
export interface AnomalySink {
  insertAnomalies(rows: AnomalyEvent[]): Promise<unknown>;
  /** Records when the condition an anomaly opened cleared (best effort). */
  resolveAnomaly?(id: string, resolvedAt: number): Promise<unknown>;
  release(): Promise<void> | void;
}

/** What the engine needs from the configuration. */
export interface AnomalyEngineOptions {
  rules: readonly Rule[];
  max_series: number;
  check_interval: number;
  /** Where anomalies are stored; none: not stored. */
  sink?: AnomalySink | undefined;
}

/** Anomalies remembered per series, to publish and store again when a task is redelivered. */
const RECENT_PER_SERIES = 16;
/** Silence anomalies kept for a retry while storage fails. */
const MAX_PENDING = 10_000;

interface Compiled {
  rule: Rule;
  name: string;
  matches: (device: string, metric: string) => boolean;
}

interface RuleState {
  compiled: Compiled;
  detector: Detector;
  /** Id of the anomaly of the open condition; `undefined` while normal. */
  active: string | undefined;
}

interface SeriesState {
  rules: RuleState[];
  silent: SilentState[];
  hasLast: boolean;
  lastTs: number;
  lastValue: number;
  /** `seq` of the last sample judged, when it had one. */
  lastSeq: number | undefined;
  recent: AnomalyEvent[];
}

interface SilentState {
  compiled: Compiled & { rule: RuleOf<"silent"> };
  device: string;
  lastSeen: number;
  active: string | undefined;
}

/** A stable 16-hex-digit id from the parts (two FNV-1a hashes). */
export function anomalyId(rule: string, device: string, metric: string, ts: number): string {
  const text = `${rule}\u0000${device}\u0000${metric}\u0000${ts}`;
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  return hex(seedFrom(text)) + hex(seedFrom(text, 0x9e3779b9));
}

/**
 * Whether a sample was judged before (redelivered) or is late: by timestamp, and by `seq` only
 * between samples of the same timestamp (when both have one; else equal timestamps count as
 * new). A seq alone would take a restarted device, counting from 0 again, for a redelivery.
 */
function seenBefore(s: Sample, state: SeriesState): boolean {
  if (s.ts !== state.lastTs) return s.ts < state.lastTs;
  return s.seq !== undefined && state.lastSeq !== undefined && s.seq <= state.lastSeq;
}

/** Keeps `telemetry_anomaly_state` and the evictions counter in step with one map. */
interface StateGauge {
  added(): void;
  evicted(): void;
}

/** Moves `key` to the most recently used end, evicting the idlest entry beyond `cap`. */
function touch<V>(
  map: Map<string, V>,
  key: string,
  make: () => V,
  cap: number,
  gauge: StateGauge,
): V {
  let value = map.get(key);
  if (value !== undefined) map.delete(key);
  else {
    value = make();
    gauge.added();
    if (map.size >= cap) {
      map.delete(map.keys().next().value!);
      gauge.evicted();
    }
  }
  map.set(key, value);
  return value;
}

/** Creates the handler instance. */
export function createAnomalyEngine(
  options: AnomalyEngineOptions,
  ctx: PluginContext,
): HandlerInstance {
  const { clock, logger, events } = ctx;
  const { sink, max_series: maxSeries } = options;
  const compiled: Compiled[] = options.rules.map((rule) => {
    const device = globMatcher(rule.device), metric = globMatcher(rule.metric);
    return { rule, name: ruleName(rule), matches: (d, m) => device(d) && metric(m) };
  });
  const series = new Map<string, SeriesState>();
  const silences = new Map<string, SilentState>();
  const detected = ctx.metrics.counter(
    "anomalies_total",
    "Anomalies found (once when a condition starts), by device, rule and severity",
    ["device", "rule", "severity"],
  );
  const cleared = ctx.metrics.counter(
    "anomalies_resolved_total",
    "Anomaly conditions that cleared, by device and rule",
    ["device", "rule"],
  );
  const stateSize = ctx.metrics.gauge(
    "anomaly_state",
    "Detector state held in this process: series (device+metric) and silence trackers",
    ["state"],
  );
  const stateEvicted = ctx.metrics.counter(
    "anomaly_state_evicted_total",
    "Idlest detector states forgotten because max_series was reached",
    ["state"],
  );
  const gaugeOf = (state: string): StateGauge => ({
    added: () => stateSize.inc({ state }),
    evicted: () => {
      stateSize.dec({ state });
      stateEvicted.inc({ state });
    },
  });
  const seriesGauge = gaugeOf("series"), silenceGauge = gaugeOf("silence");
  stateSize.inc({ state: "series" }, 0);
  stateSize.inc({ state: "silence" }, 0);
  stateEvicted.inc({ state: "series" }, 0);
  stateEvicted.inc({ state: "silence" }, 0);

  /** Publishes and counts a new anomaly. */
  function found(anomaly: AnomalyEvent): void {
    detected.inc({ device: anomaly.device, rule: anomaly.rule, severity: anomaly.severity });
    events.publish(ANOMALY_TOPIC, anomaly);
  }
  let pending: AnomalyEvent[] = [];
  const resolutions: AnomalyResolvedEvent[] = [];

  function newSeries(device: string, metric: string): SeriesState {
    const state: SeriesState = {
      rules: [],
      silent: [],
      hasLast: false,
      lastTs: 0,
      lastValue: 0,
      lastSeq: undefined,
      recent: [],
    };
    for (const c of compiled) {
      if (!c.matches(device, metric)) continue;
      if (c.rule.kind === "silent") continue; // per device, not per series: see touchSilences()
      state.rules.push({ compiled: c, detector: createDetector(c.rule), active: undefined });
    }
    return state;
  }

  /** The silence trackers a sample of this series feeds, refreshed (LRU) on each use. */
  function touchSilences(device: string, metric: string, now: number): void {
    for (const c of compiled) {
      if (c.rule.kind !== "silent" || !c.matches(device, metric)) continue;
      const rule = c.rule;
      const state = touch(
        silences,
        `${c.name}\u0000${device}`,
        () => ({ compiled: { ...c, rule }, device, lastSeen: now, active: undefined }),
        maxSeries,
        silenceGauge,
      );
      state.lastSeen = now;
      if (state.active !== undefined) {
        resolved({ anomaly_id: state.active, device, metric: rule.metric, rule: c.name, ts: now });
        state.active = undefined;
      }
    }
  }

  function resolved(item: AnomalyResolvedEvent): void {
    cleared.inc({ device: item.device, rule: item.rule });
    events.publish(ANOMALY_RESOLVED_TOPIC, item);
    if (sink?.resolveAnomaly) resolutions.push(item);
  }

  /** Marks cleared conditions in storage, after their anomalies were inserted; best effort. */
  async function storeResolutions(): Promise<void> {
    const items = resolutions.splice(0);
    await Promise.all(items.map(async (item) => {
      try {
        await sink?.resolveAnomaly?.(item.anomaly_id, item.ts);
      } catch (error) {
        // Not replayed on redelivery (the condition is already closed), so not worth a retry.
        logger.warn(`Cannot mark anomaly "${item.anomaly_id}" resolved: ${errorMessage(error)}`);
      }
    }));
  }

  function anomalyOf(
    c: Compiled,
    device: string,
    metric: string,
    ts: number,
    value: number,
    f: Finding,
  ): AnomalyEvent {
    return {
      id: anomalyId(c.name, device, metric, ts),
      device,
      metric,
      ts,
      value,
      expected_low: f.expected_low,
      expected_high: f.expected_high,
      score: f.score,
      rule: c.name,
      severity: c.rule.severity,
      detail: f.detail,
    };
  }

  async function store(rows: AnomalyEvent[]): Promise<void> {
    if (!sink || rows.length === 0) return;
    await sink.insertAnomalies(rows);
  }

  async function checkSilence(): Promise<void> {
    const now = clock.now();
    const silent: AnomalyEvent[] = [];
    for (const state of silences.values()) {
      const { after } = state.compiled.rule;
      const silentFor = now - state.lastSeen;
      if (state.active !== undefined || silentFor < after) continue;
      const c = state.compiled;
      const anomaly = anomalyOf(
        c,
        state.device,
        c.rule.metric,
        state.lastSeen + after,
        silentFor / 1000,
        {
          expected_low: 0,
          expected_high: after / 1000,
          score: silentFor / after,
          detail: `No sample for ${silentFor / 1000}s (limit ${after / 1000}s)`,
        },
      );
      state.active = anomaly.id;
      silent.push(anomaly);
      found(anomaly);
    }
    if (!sink) return;
    const rows = [...pending, ...silent];
    if (rows.length === 0) return;
    try {
      await store(rows);
      pending = [];
    } catch (error) {
      // Kept for the next tick; beyond the cap the oldest are given up.
      pending = rows.slice(-MAX_PENDING);
      logger.warn(`Cannot store ${rows.length} silent-device anomalies: ${errorMessage(error)}`, {
        pending: pending.length,
      });
    }
  }

  const stopped = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stopped.signal]);
  const hasSilent = compiled.some((c) => c.rule.kind === "silent");
  const timer = hasSilent
    ? (async function silenceTimer() {
      while (await sleepUnlessAborted(clock, options.check_interval, signal)) await checkSilence();
    })().catch((error) => logger.error(`Silence timer failed: ${errorMessage(error)}`))
    : Promise.resolve();

  return {
    async handle(samples: readonly Sample[], hctx: HandlerContext): Promise<void> {
      const seen: AnomalyEvent[] = [];
      const now = clock.now();
      let state: SeriesState | undefined;
      let prev: Sample | undefined;
      for (const s of samples) {
        if (!state || !prev || s.device !== prev.device || s.metric !== prev.metric) {
          const { device, metric } = s;
          state = touch(
            series,
            `${device}\u0000${metric}`,
            () => newSeries(device, metric),
            maxSeries,
            seriesGauge,
          );
          touchSilences(device, metric, now);
        }
        prev = s;
        // Analyze marked it physically impossible: not a reading to learn from.
        if (s.quality === "bad") continue;
        if (state.hasLast) {
          // Redelivered (or late): judged before; hand on what was found then. A sample with
          // no seq and the last timestamp may be either, so it is also judged.
          const judged = seenBefore(s, state);
          if (judged || s.ts === state.lastTs) {
            for (const a of state.recent) if (a.ts === s.ts && !seen.includes(a)) seen.push(a);
          }
          if (judged) continue;
        }
        const previous = state.hasLast ? { ts: state.lastTs, value: state.lastValue } : undefined;
        for (const r of state.rules) {
          const finding = r.detector.judge(s.value, s.ts, previous);
          if (finding && r.active === undefined) {
            const anomaly = anomalyOf(r.compiled, s.device, s.metric, s.ts, s.value, finding);
            r.active = anomaly.id;
            seen.push(anomaly);
            state.recent.push(anomaly);
            if (state.recent.length > RECENT_PER_SERIES) state.recent.shift();
            found(anomaly);
          } else if (!finding && r.active !== undefined) {
            const item = {
              anomaly_id: r.active,
              device: s.device,
              metric: s.metric,
              rule: r.compiled.name,
              ts: s.ts,
            };
            r.active = undefined;
            resolved(item);
          }
        }
        state.hasLast = true;
        state.lastTs = s.ts;
        state.lastValue = s.value;
        state.lastSeq = s.seq;
      }
      for (const a of seen) hctx.publish(ANOMALY_TOPIC, a);
      try {
        await store(seen);
      } catch (error) {
        throw new RetryableError(`Cannot store ${seen.length} anomalies: ${errorMessage(error)}`, {
          cause: error,
        });
      }
      await storeResolutions();
    },
    async flush(): Promise<void> {
      if (pending.length === 0) return;
      try {
        await store(pending);
        pending = [];
      } catch (error) {
        logger.error(
          `Cannot store ${pending.length} silent-device anomalies at shutdown: ${
            errorMessage(error)
          }`,
        );
      }
    },
    async close(): Promise<void> {
      stopped.abort();
      await timer;
      // This instance's state is gone with it.
      stateSize.dec({ state: "series" }, series.size);
      stateSize.dec({ state: "silence" }, silences.size);
      await sink?.release();
    },
  };
}

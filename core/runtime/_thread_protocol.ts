/**
 * Messages between the main isolate and a thread isolate (a Web Worker that
 * runs some pipelines' handler chains). Everything here crosses
 * `postMessage`, so it is plain data.
 *
 * @module
 */
import type { MetricObjectWithValues, MetricValue } from "prom-client";
import type { ResolvedConfig } from "../config/schema.ts";
import type { LogFields, LogLevel } from "../log.ts";
import type { PipelineTotals } from "./metrics.ts";
import type { ReadinessCheck } from "./_readiness.ts";

/** A registry's metrics as `getMetricsAsJSON()` gives them. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** What a thread isolate is started with. */
export interface ThreadStart {
  kind: "start";
  /** 1, 2, …: the main isolate is thread 0. */
  thread: number;
  /** The configuration, its role `processor` and its pipelines only those this thread runs. */
  config: ResolvedConfig;
  /** Third-party plugin modules to import (the registry's non-built-in sources). */
  plugins: string[];
  baseDir: string;
  dataDir: string;
  seed: number;
}

/** Main → thread. */
export type ToThread =
  | ThreadStart
  | { kind: "report"; id: number }
  | { kind: "readiness"; id: number; timeoutMs: number }
  | { kind: "stop" };

/** A thread's counts: totals per pipeline and, when asked, its metrics. */
export interface ThreadReport {
  totals: Record<string, PipelineTotals>;
  metrics?: MetricsJson;
}

/** Thread → main. */
export type FromThread =
  | { kind: "ready" }
  | { kind: "failed"; error: string }
  | { kind: "log"; level: LogLevel; message: string; fields?: LogFields }
  | { kind: "totals"; totals: Record<string, PipelineTotals> }
  | { kind: "report"; id: number; report: ThreadReport }
  | { kind: "readiness"; id: number; checks: ReadinessCheck[] }
  | { kind: "stopped"; report: ThreadReport };

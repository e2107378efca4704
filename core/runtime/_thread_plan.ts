/**
 * Which pipelines the thread isolates of `threads:` run, what they are
 * started with (pure functions of the configuration and the components),
 * and starting them.
 *
 * @module
 */
import type { ResolvedConfig } from "../config/schema.ts";
import type { HandlerInstance } from "../plugin.ts";
import type { PluginRegistry } from "../registry.ts";
import type { PipelineRuntime } from "./_assembly.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { RuntimeMetrics } from "./metrics.ts";
import { handlerNames } from "./_reload.ts";
import { resolveThreads, ThreadPool } from "./threads.ts";

/** How many isolates run, which pipelines threads take, and why each other one does not. */
export interface ThreadPlan {
  /** Isolates in all, the main one included (1: no threads). */
  count: number;
  /** Pipelines the thread isolates run. */
  pipelines: string[];
  /** Pipelines that stay on the main isolate, with the reason. */
  mainOnly: Map<string, string>;
}

/** What thread isolates are started with, and a key that changes when any of it does. */
export interface ThreadSpec {
  plan: ThreadPlan;
  /** The configuration a thread runs: role processor, only the plan's pipelines, no tests. */
  config: ResolvedConfig;
  /** Third-party plugin sources the threads import. */
  plugins: string[];
  /** Empty when threads have nothing to run. */
  key: string;
}

/**
 * Which pipelines thread isolates may run (see `threads:`) and why each
 * other one stays on the main isolate: its broker lives in that isolate, or
 * a handler holds something only one isolate may open. `possible` is false
 * when this process cannot start threads at all (no thread module, no
 * processor role).
 */
export function threadPlan(input: {
  threads: ResolvedConfig["threads"];
  possible: boolean;
  pipelines: Iterable<PipelineRuntime>;
  config: ResolvedConfig;
  handlers: ReadonlyMap<string, HandlerInstance>;
}): ThreadPlan {
  const count = resolveThreads(input.threads);
  const pipelines: string[] = [];
  const mainOnly = new Map<string, string>();
  if (!input.possible || count < 2) return { count: 1, pipelines, mainOnly };
  for (const pr of input.pipelines) {
    if (!pr.broker.shared) {
      mainOnly.set(
        pr.name,
        `its broker "${pr.brokerName}" lives in this isolate (sqlite or redis can be shared)`,
      );
      continue;
    }
    const names = handlerNames(input.config.pipelines[pr.name]!);
    const held = names.find((h) => input.handlers.get(h)?.mainIsolateOnly !== undefined);
    if (held !== undefined) {
      mainOnly.set(pr.name, `handler "${held}": ${input.handlers.get(held)!.mainIsolateOnly}`);
      continue;
    }
    pipelines.push(pr.name);
  }
  return { count, pipelines, mainOnly };
}

/** The start configuration and key of the threads `plan` asks for. */
export function threadSpec(
  plan: ThreadPlan,
  config: ResolvedConfig,
  registry: PluginRegistry,
): ThreadSpec {
  const pipelines = Object.fromEntries(
    plan.pipelines.map((name) => [name, config.pipelines[name]!]),
  );
  const threadConfig = { ...config, role: "processor" as const, pipelines, tests: [] };
  const plugins = registry.list()
    .filter((p) => p.source !== "builtin")
    .map((p) => p.source);
  const key = plan.pipelines.length === 0
    ? ""
    : JSON.stringify({ count: plan.count, config: threadConfig, plugins });
  return { plan, config: threadConfig, plugins, key };
}

/**
 * Starts the thread isolates `spec` asks for, when there is something for
 * them to run; `undefined` when there is not (or the configuration cannot be
 * handed to another isolate). Logs which pipelines stay on the main isolate.
 */
export function startThreadPool(spec: ThreadSpec, deps: {
  module: URL | undefined;
  baseDir: string;
  dataDir: string;
  seed: number;
  logger: Logger;
  metrics: RuntimeMetrics;
}): ThreadPool | undefined {
  const { plan, config, plugins, key } = spec;
  const { logger, metrics } = deps;
  for (const [pipeline, why] of plan.mainOnly) {
    logger.info("Pipeline runs on the main isolate only", { pipeline, reason: why });
  }
  if (key === "" || !deps.module) return undefined;
  try {
    structuredClone(config);
  } catch (error) {
    logger.error("Cannot give the configuration to thread isolates; running on one", {
      error: errorMessage(error),
    });
    return undefined;
  }
  const pool = new ThreadPool({
    module: deps.module,
    count: plan.count - 1,
    start: (thread) => ({
      config,
      plugins,
      baseDir: deps.baseDir,
      dataDir: deps.dataDir,
      seed: (deps.seed + thread) >>> 0,
    }),
    logger,
    onRestart: (thread) => metrics.threadRestarts.labels(String(thread)).inc(),
  });
  metrics.addOtherIsolates(pool);
  for (let n = 1; n < plan.count; n++) metrics.threadRestarts.labels(String(n)).inc(0);
  pool.start();
  return pool;
}

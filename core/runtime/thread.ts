/**
 * The thread side of `threads:`: a Web Worker that runs a processor runtime
 * for the pipelines the main isolate gives it, with its own broker consumer,
 * handlers and connections. It logs through the main isolate and reports its
 * counts there, so `/metrics`, readiness and the stop summary cover it.
 *
 * The program's thread module calls {@link serveThread} with its built-in
 * plugins (cli/thread.ts does).
 *
 * @module
 */
import { errorMessage } from "../errors.ts";
import type { LogFields, Logger, LogLevel } from "../log.ts";
import { importPlugin, type PluginRegistry } from "../registry.ts";
import type { PipelineTotals } from "./metrics.ts";
import { Runtime } from "./runtime.ts";
import type { FromThread, ThreadReport, ThreadStart, ToThread } from "./_thread_protocol.ts";

/** How often a thread sends its totals (rates, the status API). */
const TOTALS_EVERY_MS = 500;

interface WorkerScope {
  postMessage(message: FromThread): void;
  onmessage: ((event: MessageEvent<ToThread>) => void) | null;
  close(): void;
}

/** Plain data for postMessage: fields may hold errors or class instances. */
function plain(fields: LogFields | undefined): LogFields | undefined {
  if (fields === undefined) return undefined;
  try {
    return structuredClone(fields);
  } catch {
    return JSON.parse(JSON.stringify(fields, (_k, v) => v instanceof Error ? errorMessage(v) : v));
  }
}

function forwardingLogger(post: (m: FromThread) => void, bound: LogFields = {}): Logger {
  const line = (level: LogLevel) => (message: string, fields?: LogFields) => {
    const all = fields ? { ...bound, ...fields } : bound;
    post({ kind: "log", level, message, fields: plain(all)! });
  };
  return {
    debug: line("debug"),
    info: line("info"),
    warn: line("warn"),
    error: line("error"),
    child: (fields) => forwardingLogger(post, { ...bound, ...fields }),
  };
}

function totalsOf(runtime: Runtime): Record<string, PipelineTotals> {
  return Object.fromEntries(
    [...runtime.pipelines.keys()].map((name) => [name, { ...runtime.metrics.totals(name) }]),
  );
}

async function reportOf(runtime: Runtime, withMetrics: boolean): Promise<ThreadReport> {
  if (!withMetrics) return { totals: totalsOf(runtime) };
  runtime.metrics.flush();
  const metrics = await runtime.metrics.registry.getMetricsAsJSON();
  return { totals: totalsOf(runtime), metrics };
}

/**
 * Serves the thread protocol in this Web Worker: waits for its start
 * message, creates and starts the runtime, answers report and readiness
 * requests, and on stop drains and reports its final counts.
 *
 * @example
 * ```ts ignore
 * import { serveThread } from "./thread.ts";
 * import { builtinRegistry } from "../../cli/builtins.ts";
 * serveThread(builtinRegistry);
 * ```
 */
export function serveThread(registry: () => PluginRegistry): void {
  const scope = globalThis as unknown as WorkerScope;
  const post = (m: FromThread) => scope.postMessage(m);
  const logger = forwardingLogger(post);
  let runtime: Runtime | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;

  const start = async (m: ThreadStart) => {
    try {
      const plugins = registry().clone();
      for (const source of m.plugins) {
        plugins.register(await importPlugin(source, m.baseDir), source);
      }
      runtime = await Runtime.create({ config: m.config, registry: plugins }, {
        role: "processor",
        logger,
        seed: m.seed,
        baseDir: m.baseDir,
        dataDir: m.dataDir,
      });
    } catch (error) {
      post({ kind: "failed", error: errorMessage(error) });
      scope.close();
      return;
    }
    runtime.start();
    const rt = runtime;
    timer = setInterval(() => post({ kind: "totals", totals: totalsOf(rt) }), TOTALS_EVERY_MS);
    post({ kind: "ready" });
  };

  const stop = async () => {
    clearInterval(timer);
    if (!runtime) {
      post({ kind: "stopped", report: { totals: {} } });
      scope.close();
      return;
    }
    try {
      await runtime.stop();
    } catch (error) {
      logger.error("Thread stop failed", { error: errorMessage(error) });
    }
    const report = await reportOf(runtime, true);
    logger.info("Thread stopped", { ...runtime.metrics.grandTotals() });
    post({ kind: "stopped", report });
    scope.close();
  };

  const handle = async (m: ToThread) => {
    switch (m.kind) {
      case "start":
        await start(m);
        break;
      case "report":
        if (runtime) post({ kind: "report", id: m.id, report: await reportOf(runtime, true) });
        break;
      case "readiness":
        post({
          kind: "readiness",
          id: m.id,
          checks: runtime
            ? await runtime.readiness(m.timeoutMs)
            : [{ name: "runtime", ready: false, reason: "Not started" }],
        });
        break;
      case "stop":
        await stop();
        break;
    }
  };
  // One message at a time: a stop that arrives while the runtime is still being created
  // waits for it, and then stops it, rather than closing the isolate under it.
  let handled = Promise.resolve();
  scope.onmessage = (event) => {
    handled = handled.then(() => handle(event.data));
  };
}

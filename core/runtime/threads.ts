/**
 * The main side of `threads:`: starts thread isolates (Web Workers) that run
 * some pipelines' handler chains beside the main isolate, restarts one that
 * crashes, merges their counts into this process's metrics and readiness,
 * and stops them so that nothing they hold is lost.
 *
 * A thread shares nothing with the main isolate but messages: it opens its
 * own broker consumer and connections, which is why only pipelines on a
 * broker that several processes may share (sqlite, Redis) run there. A
 * thread that dies holding tasks loses none: the broker redelivers them
 * once the lease of its consumer ends.
 *
 * @module
 */
import client from "prom-client";
import type { Logger } from "../log.ts";
import { addTotals, emptyTotals, type PipelineTotals } from "./metrics.ts";
import type { ReadinessCheck } from "./_readiness.ts";
import type { FromThread, MetricsJson, ThreadStart, ToThread } from "./_thread_protocol.ts";

export type { MetricsJson };

/** Options of {@link ThreadPool}. */
export interface ThreadPoolOptions {
  /** The program's thread module: it calls `serveThread()` (see thread.ts). */
  module: URL;
  /** Thread isolates to run beside the main one (`threads:` minus one). */
  count: number;
  /** The start message of thread `n` (1, 2, …). */
  start(thread: number): Omit<ThreadStart, "kind" | "thread">;
  logger: Logger;
  /** Counts restarts after a crash, by thread. */
  onRestart?(thread: number): void;
}

const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** How long a metrics or readiness request waits for a busy thread. */
const ASK_TIMEOUT_MS = 2000;
/** A thread that does not answer its stop this long after the grace period is terminated. */
const STOP_SLACK_MS = 2000;

type Ask = { kind: "report"; id: number } | { kind: "readiness"; id: number; timeoutMs: number };

/** One thread isolate and what it last reported; replaced when it restarts. */
class ThreadHandle {
  readonly thread: number;
  readonly worker: Worker;
  state: "starting" | "ready" | "stopping" | "gone" = "starting";
  totals: Record<string, PipelineTotals> = {};
  metrics: MetricsJson | undefined;
  readonly stopped = Promise.withResolvers<void>();
  readonly #pending = new Map<number, (m: FromThread) => void>();
  #nextId = 0;

  constructor(thread: number, worker: Worker) {
    this.thread = thread;
    this.worker = worker;
  }

  send(message: ToThread): void {
    this.worker.postMessage(message);
  }

  /** Sends a request and waits for its answer; `undefined` after `ms` or when the thread goes. */
  ask(make: (id: number) => Ask, ms: number): Promise<FromThread | undefined> {
    const id = this.#nextId++;
    const { promise, resolve } = Promise.withResolvers<FromThread | undefined>();
    const timer = setTimeout(() => {
      this.#pending.delete(id);
      resolve(undefined);
    }, ms);
    this.#pending.set(id, (m) => {
      clearTimeout(timer);
      resolve(m);
    });
    this.send(make(id));
    return promise;
  }

  answer(id: number, m: FromThread): void {
    const settle = this.#pending.get(id);
    this.#pending.delete(id);
    settle?.(m);
  }

  /** Gives up on every request (the thread is gone). */
  abandon(): void {
    for (const settle of this.#pending.values()) settle({ kind: "failed", error: "gone" });
    this.#pending.clear();
  }
}

/** Adds the totals of every pipeline of `from` to `into`. */
function addPipelineTotals(
  into: Record<string, PipelineTotals>,
  from: Record<string, PipelineTotals>,
): void {
  for (const [pipeline, t] of Object.entries(from)) addTotals(into[pipeline] ??= emptyTotals(), t);
}

/** Runs and supervises the thread isolates of one process. */
export class ThreadPool {
  readonly #o: ThreadPoolOptions;
  readonly #handles = new Map<number, ThreadHandle>();
  /** Consecutive failures per thread, for the restart backoff. */
  readonly #failures = new Map<number, number>();
  readonly #restartTimers = new Map<number, ReturnType<typeof setTimeout>>();
  /** Counts of threads that ended (crashed, restarted, stopped): kept so totals never go back. */
  readonly #retiredTotals: Record<string, PipelineTotals> = {};
  #retiredMetrics: MetricsJson | undefined;
  /** The last retirement's merge (they run one after the other, so none is lost). */
  #retiring: Promise<void> = Promise.resolve();
  #stopping = false;

  constructor(options: ThreadPoolOptions) {
    this.#o = options;
  }

  /** Threads configured beside the main isolate. */
  get count(): number {
    return this.#o.count;
  }

  start(): void {
    for (let n = 1; n <= this.#o.count; n++) this.#spawn(n);
  }

  #spawn(thread: number): void {
    const worker = new Worker(this.#o.module, {
      type: "module",
      name: `telemetry-thread-${thread}`,
    });
    const handle = new ThreadHandle(thread, worker);
    this.#handles.set(thread, handle);
    const log = this.#o.logger.child({ thread });
    worker.onmessage = (event: MessageEvent<FromThread>) => {
      const m = event.data;
      switch (m.kind) {
        case "log":
          log[m.level](m.message, m.fields);
          break;
        case "ready":
          if (handle.state === "starting") handle.state = "ready";
          this.#failures.set(thread, 0);
          break;
        case "failed":
          void this.#ended(handle, `Cannot start: ${m.error}`);
          break;
        case "totals":
          handle.totals = m.totals;
          break;
        case "report":
          handle.answer(m.id, m);
          break;
        case "readiness":
          handle.answer(m.id, m);
          break;
        case "stopped":
          handle.totals = m.report.totals;
          handle.metrics = m.report.metrics ?? handle.metrics;
          handle.state = "gone";
          this.#retire(handle);
          handle.stopped.resolve();
          worker.terminate();
          break;
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      // Handled here: an uncaught error in a thread must not end the process.
      event.preventDefault();
      void this.#ended(handle, event.message || "uncaught error");
    };
    worker.onmessageerror = () => void this.#ended(handle, "a message could not be read");
    handle.send({ kind: "start", thread, ...this.#o.start(thread) });
  }

  /** A thread ended without being asked to: report it, keep its counts, start it again. */
  #ended(handle: ThreadHandle, reason: string): void {
    if (handle.state === "gone") return;
    const wasStopping = handle.state === "stopping";
    handle.state = "gone";
    handle.worker.terminate();
    this.#retire(handle);
    handle.stopped.resolve();
    if (wasStopping || this.#stopping) {
      this.#o.logger.error("Thread failed while stopping", { thread: handle.thread, reason });
      return;
    }
    const failures = (this.#failures.get(handle.thread) ?? 0) + 1;
    this.#failures.set(handle.thread, failures);
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (failures - 1));
    this.#o.logger.error(
      "Thread stopped unexpectedly; starting it again (tasks it held return to the broker)",
      { thread: handle.thread, reason, restart_in_ms: delay },
    );
    this.#o.onRestart?.(handle.thread);
    this.#restartTimers.set(
      handle.thread,
      setTimeout(() => {
        this.#restartTimers.delete(handle.thread);
        if (!this.#stopping) this.#spawn(handle.thread);
      }, delay),
    );
  }

  /** Moves a thread's last counts into the retired ones (gauges are not kept: they were its own). */
  #retire(handle: ThreadHandle): void {
    handle.abandon();
    addPipelineTotals(this.#retiredTotals, handle.totals);
    handle.totals = {};
    // `type` is a string at run time; its declared enum is not exported as a value.
    const counts = handle.metrics?.filter((m) => String(m.type) !== "gauge");
    handle.metrics = undefined;
    if (!counts) return;
    this.#retiring = this.#retiring.then(async () => {
      const sets = this.#retiredMetrics ? [this.#retiredMetrics, counts] : [counts];
      this.#retiredMetrics = await client.AggregatorRegistry.aggregate(sets).getMetricsAsJSON();
    });
  }

  /** Totals per pipeline of every thread, running or ended. */
  totals(): Record<string, PipelineTotals>[] {
    return [this.#retiredTotals, ...[...this.#handles.values()].map((h) => h.totals)];
  }

  /** Fresh metrics of every running thread, and the counts of ended ones. */
  async metrics(): Promise<MetricsJson[]> {
    const live = [...this.#handles.values()].filter((h) => h.state === "ready");
    const answers = await Promise.all(
      live.map(async (h) => {
        const m = await h.ask((id) => ({ kind: "report", id }), ASK_TIMEOUT_MS);
        if (m?.kind === "report") {
          h.metrics = m.report.metrics;
          h.totals = m.report.totals;
        }
        // A thread too busy to answer shows what it said last time.
        return h.metrics;
      }),
    );
    const out = answers.filter((m): m is MetricsJson => m !== undefined);
    await this.#retiring;
    if (this.#retiredMetrics) out.push(this.#retiredMetrics);
    return out;
  }

  /** One check per thread: ready when it runs and every broker and handler in it is ready. */
  async readiness(timeoutMs: number): Promise<ReadinessCheck[]> {
    return await Promise.all(
      Array.from({ length: this.#o.count }, async (_, i): Promise<ReadinessCheck> => {
        const thread = i + 1;
        const name = `thread:${thread}`;
        const h = this.#handles.get(thread);
        if (!h || h.state === "gone") {
          return { name, ready: false, reason: "Restarting after a failure" };
        }
        if (h.state !== "ready") return { name, ready: false, reason: `Thread is ${h.state}` };
        const m = await h.ask(
          (id) => ({ kind: "readiness", id, timeoutMs }),
          timeoutMs + ASK_TIMEOUT_MS,
        );
        if (m?.kind !== "readiness") {
          return { name, ready: false, reason: "No answer (thread busy or gone)" };
        }
        const failing = m.checks.filter((c) => !c.ready);
        return failing.length === 0 ? { name, ready: true } : {
          name,
          ready: false,
          reason: failing.map((c) => `${c.name}: ${c.reason ?? "not ready"}`).join("; "),
        };
      }),
    );
  }

  /**
   * Stops every thread: each finishes the tasks it holds within `grace`
   * (then releases them), flushes its handlers and closes its broker. A
   * thread still running `STOP_SLACK_MS` after that is terminated; its
   * broker redelivers what it held.
   */
  async stop(grace: number): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#restartTimers.values()) clearTimeout(timer);
    this.#restartTimers.clear();
    const handles = [...this.#handles.values()].filter((h) => h.state !== "gone");
    for (const h of handles) {
      h.state = "stopping";
      h.send({ kind: "stop" });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), grace + STOP_SLACK_MS);
    });
    const outcome = await Promise.race([
      Promise.all(handles.map((h) => h.stopped.promise)),
      late,
    ]);
    clearTimeout(timer);
    if (outcome === "late") {
      for (const h of handles) {
        if (h.state === "gone") continue;
        this.#o.logger.error("Thread did not stop within the grace period; terminated", {
          thread: h.thread,
        });
        h.state = "gone";
        h.worker.terminate();
        this.#retire(h);
      }
    }
    await this.#retiring;
  }
}

/**
 * The number of isolates `threads:` asks for. `auto` is one per core but
 * one: the main isolate also runs the hub, the admin API and the gateway,
 * and a broker or database usually shares the machine. Measured on 2 cores,
 * a processor beside its hub and Redis fell from 1.7M to 0.86M samples/s
 * with two isolates instead of one (docs/benchmarks.md).
 */
export function resolveThreads(
  setting: number | "auto",
  cores = navigator.hardwareConcurrency,
): number {
  if (setting !== "auto") return setting;
  return Math.max(1, (cores || 1) - 1);
}

/**
 * Routing of tasks to the handler chains of the pipelines sharing a broker.
 *
 * @module
 */
import type { RetryPolicy } from "../backoff.ts";
import type { ChainLink } from "../chain.ts";
import type { Task } from "../task.ts";

export type { ChainLink };

/** Where a task goes: its pipeline's chain for its type, and that pipeline's retry policy. */
export interface Route {
  pipeline: string;
  chain: readonly ChainLink[];
  retry: RetryPolicy;
}

/**
 * Routes tasks of every pipeline sharing one broker. A task goes to the
 * pipeline it names (the gateway stamps it) when that pipeline handles its
 * type; a task naming no known pipeline (a foreign producer's) goes to the
 * first pipeline that handles its type.
 */
export class BrokerRouter {
  #byPipeline = new Map<string, Map<string, Route>>();
  #paused = new Set<string>();

  /** Adds or replaces a pipeline's routes (type → chain), resuming it if paused. */
  set(
    pipeline: string,
    chains: ReadonlyMap<string, readonly ChainLink[]>,
    retry: RetryPolicy,
  ): void {
    const routes = new Map<string, Route>();
    for (const [type, chain] of chains) routes.set(type, { pipeline, chain, retry });
    this.#byPipeline.set(pipeline, routes);
    this.#paused.delete(pipeline);
  }

  /**
   * Holds a pipeline's tasks while it restarts: they are released back to
   * the broker untouched rather than run by another pipeline's chain.
   */
  pause(pipeline: string): void {
    this.#byPipeline.delete(pipeline);
    this.#paused.add(pipeline);
  }

  delete(pipeline: string): void {
    this.#byPipeline.delete(pipeline);
    this.#paused.delete(pipeline);
  }

  /** The route of `task`, `"paused"` while its pipeline restarts, or why there is none. */
  resolve(task: Task): Route | "paused" | { unroutable: string } {
    if (task.pipeline !== undefined && this.#paused.has(task.pipeline)) return "paused";
    const own = task.pipeline === undefined ? undefined : this.#byPipeline.get(task.pipeline);
    const direct = own?.get(task.type);
    if (direct) return direct;
    for (const routes of this.#byPipeline.values()) {
      const route = routes.get(task.type);
      if (route) return route;
    }
    const known = [...new Set([...this.#byPipeline.values()].flatMap((r) => [...r.keys()]))]
      .map((t) => `"${t}"`).join(", ");
    return {
      unroutable: `Unknown task type "${task.type}"; the pipelines on this broker handle ${known}`,
    };
  }
}

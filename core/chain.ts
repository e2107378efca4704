/**
 * Running handlers, the one way: the worker pool, the config-test runner
 * (`deno task validate`) and the test kit build plugin contexts with
 * {@link pluginContext} and run handler chains with {@link runChain}, so a
 * chain behaves the same in a test as in production.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { EventBus } from "./events.ts";
import type { Logger } from "./log.ts";
import type {
  HandlerContext,
  HandlerInstance,
  PluginContext,
  PluginKind,
  PluginMetrics,
} from "./plugin.ts";
import { PermanentError } from "./errors.ts";
import { seededRandom, seedFrom } from "./random.ts";
import { type Sample, sampleProblem } from "./sample.ts";

/** A handler in a chain, with its component name (for metrics and logs). */
export interface ChainLink {
  name: string;
  instance: HandlerInstance;
}

/**
 * The `publish`/`published` pair of one attempt's handler chain: items
 * handed from earlier handlers to later ones, by topic.
 */
export function chainTopics(): Pick<HandlerContext, "publish" | "published"> {
  const topics = new Map<string, unknown[]>();
  return {
    publish(topic, item) {
      let list = topics.get(topic);
      if (!list) topics.set(topic, list = []);
      list.push(item);
    },
    published: (topic) => topics.get(topic) ?? [],
  };
}

/** What {@link runChain} tells its caller as it goes, and how it may step in. */
export interface ChainHooks {
  /** After each link: its time in milliseconds, what it was given and what goes on. */
  ran?(link: ChainLink, ms: number, input: readonly Sample[], output: readonly Sample[]): void;
  /**
   * A link threw: return the samples to go on with (having dealt with the
   * ones that failed), or throw. Without it, the error ends the chain.
   */
  failed?(link: ChainLink, input: readonly Sample[], error: unknown): Promise<readonly Sample[]>;
  /** Stop once no samples are left rather than calling later links with none. */
  stopWhenEmpty?: boolean;
}

/**
 * Why what a link returned cannot go on down the chain, naming the link,
 * the sample and the field; `undefined` when it can. Later handlers and the
 * stores trust samples past the edge, so a handler's output is held to the
 * edge's contract (a string `value`, say, is caught here, not in the store).
 */
export function outputProblem(link: string, output: unknown): string | undefined {
  if (!Array.isArray(output)) {
    const got = output === null ? "null" : typeof output;
    return `Handler "${link}" returned ${got}, not an array of samples (or nothing)`;
  }
  for (let i = 0; i < output.length; i++) {
    const problem = sampleProblem(output[i]);
    if (problem) return `Handler "${link}" returned an invalid sample [${i}]: ${problem}`;
  }
  return undefined;
}

/**
 * Runs `samples` through `chain` in order: each link gets what the one
 * before returned, or what it was given when it returned nothing. Returns
 * what the last link passed on. A link that returns something other than
 * valid samples fails the chain with a {@link PermanentError} naming it and
 * the field ({@link outputProblem}).
 *
 * @example
 * ```ts
 * import { runChain } from "./chain.ts";
 * import { handlerContext } from "./testing.ts";
 * const double = { name: "double", instance: { handle: (s: readonly { value: number }[]) => s.map((x) => ({ ...x, value: x.value * 2 })) } };
 * const out = await runChain([double as never], [{ device: "d", metric: "m", value: 2, ts: 0 }], handlerContext());
 * out[0]!.value; // 4
 * ```
 */
export async function runChain(
  chain: readonly ChainLink[],
  samples: readonly Sample[],
  ctx: HandlerContext,
  hooks: ChainHooks = {},
): Promise<readonly Sample[]> {
  let current = samples;
  for (const link of chain) {
    if (hooks.stopWhenEmpty && current.length === 0) break;
    const started = performance.now();
    let next: readonly Sample[];
    let returned: unknown;
    try {
      returned = await link.instance.handle(current, ctx);
      next = (returned as readonly Sample[] | undefined) ?? current;
    } catch (error) {
      if (!hooks.failed) throw error;
      next = await hooks.failed(link, current, error);
    }
    // What it was given, passed on as is, was checked already.
    if (returned !== undefined && returned !== current) {
      const problem = outputProblem(link.name, returned);
      if (problem) throw new PermanentError(problem);
    }
    hooks.ran?.(link, performance.now() - started, current, next);
    current = next;
  }
  return current;
}

/** What every plugin context is made of, besides its name and kind. */
export interface ContextParts {
  /** The parent logger: the context's logger names the component (`{handler: "db"}`). */
  logger: Logger;
  clock: Clock;
  signal: AbortSignal;
  baseDir: string;
  dataDir: string;
  events: EventBus;
  metrics: PluginMetrics;
}

/**
 * The context `create()` of plugin `name` of kind `kind` gets: its own
 * logger child and a random source seeded from its kind and name, so runs
 * repeat.
 */
export function pluginContext(kind: PluginKind, name: string, parts: ContextParts): PluginContext {
  return {
    name,
    logger: parts.logger.child({ [kind]: name }),
    clock: parts.clock,
    random: seededRandom(seedFrom(`${kind}:${name}`)),
    signal: parts.signal,
    baseDir: parts.baseDir,
    dataDir: parts.dataDir,
    events: parts.events,
    metrics: parts.metrics,
  };
}

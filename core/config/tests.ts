/**
 * Config tests: the `tests:` section of `telemetry.yaml` runs samples
 * through handlers exactly as configured and compares what comes out
 * (Benthos's config unit tests, for handler chains). `deno task validate`
 * runs them.
 *
 * Each test gets fresh handler instances, a clock stopped at
 * {@link TEST_START} (so windows and timers are deterministic), its own event
 * bus and metrics, and a chain that behaves as a worker's: each handler's
 * returned samples go to the next, and items published with
 * `ctx.publish()` reach later handlers.
 *
 * @module
 */
import client from "prom-client";
import type { Clock } from "../clock.ts";
import { errorMessage } from "../errors.ts";
import { createEventBus } from "../events.ts";
import type { Logger } from "../log.ts";
import { type ChainLink, chainTopics, pluginContext, runChain } from "../chain.ts";
import type { HandlerContext, HandlerInstance } from "../plugin.ts";
import { pluginMetrics } from "../plugin_metrics.ts";
import type { Sample } from "../sample.ts";
import type { LoadedConfig } from "./load.ts";
import type { ConfigTest } from "./schema.ts";

/** The time of every config test (2023-11-14T22:13:20Z): a sample without `ts` gets it plus i s. */
export const TEST_START = 1_700_000_000_000;

/** Relative tolerance of number comparisons. */
const TOLERANCE = 1e-9;

/** The outcome of one config test. */
export interface ConfigTestResult {
  name: string;
  /** Index in `tests:`. */
  index: number;
  ok: boolean;
  /** Why it failed, one line each; empty when it passed. */
  problems: string[];
}

/** A clock that stays at `at`: sleeps end only when aborted. */
function stoppedClock(at: number): Clock {
  return {
    now: () => at,
    sleep: (_ms, signal) =>
      new Promise((_, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      }),
  };
}

/** Whether `actual` has every field of `expected` (numbers within tolerance, objects partially). */
export function mismatches(expected: unknown, actual: unknown, path = ""): string[] {
  if (typeof expected === "number" && typeof actual === "number") {
    const scale = Math.max(1, Math.abs(expected));
    return Math.abs(actual - expected) <= TOLERANCE * scale
      ? []
      : [`${path || "value"}: expected ${expected}, got ${actual}`];
  }
  if (typeof expected === "object" && expected !== null && !Array.isArray(expected)) {
    if (typeof actual !== "object" || actual === null || Array.isArray(actual)) {
      return [`${path || "item"}: expected an object, got ${JSON.stringify(actual)}`];
    }
    return Object.entries(expected).flatMap(([key, value]) =>
      mismatches(value, (actual as Record<string, unknown>)[key], path ? `${path}.${key}` : key)
    );
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
    }
    return expected.flatMap((item, i) => mismatches(item, actual[i], `${path}[${i}]`));
  }
  return Object.is(expected, actual) || (expected === null && actual === undefined)
    ? []
    : [`${path || "value"}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

/** Problems of a list of items against the expected ones, in order. */
function compareList(what: string, expected: unknown[], actual: readonly unknown[]): string[] {
  const problems: string[] = [];
  if (actual.length !== expected.length) {
    problems.push(`${what}: expected ${expected.length}, got ${actual.length}`);
  }
  const n = Math.min(expected.length, actual.length);
  for (let i = 0; i < n; i++) {
    for (const m of mismatches(expected[i], actual[i])) problems.push(`${what}[${i}] ${m}`);
  }
  return problems;
}

/** Runs one test; never throws (every failure is a problem of the result). */
async function runOne(
  test: ConfigTest,
  index: number,
  loaded: LoadedConfig,
  options: { baseDir: string; logger: Logger },
): Promise<ConfigTestResult> {
  const problems: string[] = [];
  const clock = stoppedClock(TEST_START);
  const abort = new AbortController();
  const events = createEventBus(options.logger);
  const registry = new client.Registry();
  const instances: ChainLink[] = [];
  try {
    const names = test.handlers ?? loaded.config.pipelines[test.pipeline!]!.handlers;
    for (const name of names) {
      const block = loaded.config.handlers[name]!;
      const definition = loaded.registry.get("handler", block.type);
      if (!definition) throw new Error(`Handler "${name}" has an unknown type "${block.type}"`);
      const ctx = pluginContext("handler", name, {
        logger: options.logger,
        clock,
        signal: abort.signal,
        baseDir: options.baseDir,
        dataDir: Deno.cwd(),
        events,
        metrics: pluginMetrics(registry, "handler", name),
      });
      try {
        const instance = await definition.create(block.config, ctx) as HandlerInstance;
        instances.push({ name, instance });
      } catch (error) {
        throw new Error(`Cannot create handler "${name}": ${errorMessage(error)}`);
      }
    }
    let samples: readonly Sample[] = test.input.map((s, i) => ({
      ...s,
      ts: s.ts ?? TEST_START + i * 1000,
    })) as Sample[];
    const topics = chainTopics();
    const hctx: HandlerContext = {
      task: {
        id: `config-test-${index}`,
        type: "config.test",
        payload: { samples },
        attempts: 0,
        created_at: TEST_START,
      },
      attempt: 1,
      pipeline: "config-test",
      signal: abort.signal,
      clock,
      ...topics,
    };
    let failure: unknown;
    try {
      samples = await runChain(instances, samples, hctx);
    } catch (error) {
      failure = error;
    }
    if (test.expect_error !== undefined) {
      if (failure === undefined) {
        problems.push(`expected an error containing "${test.expect_error}", but the chain passed`);
      } else if (!errorMessage(failure).includes(test.expect_error)) {
        problems.push(
          `expected an error containing "${test.expect_error}", got "${errorMessage(failure)}"`,
        );
      }
    } else if (failure !== undefined) {
      problems.push(`the chain failed: ${errorMessage(failure)}`);
    }
    if (failure === undefined) {
      if (test.expect) problems.push(...compareList("samples", test.expect, samples));
      for (const [topic, expected] of Object.entries(test.expect_published ?? {})) {
        problems.push(...compareList(`published ${topic}`, expected, topics.published(topic)));
      }
    }
  } catch (error) {
    problems.push(errorMessage(error));
  } finally {
    abort.abort();
    for (const { name, instance } of instances.reverse()) {
      try {
        await instance.close?.();
      } catch (error) {
        problems.push(`Cannot close handler "${name}": ${errorMessage(error)}`);
      }
    }
  }
  return { name: test.name, index, ok: problems.length === 0, problems };
}

/** Runs every test of `tests:` in order. */
export async function runConfigTests(
  loaded: LoadedConfig,
  options: { baseDir: string; logger: Logger },
): Promise<ConfigTestResult[]> {
  const results: ConfigTestResult[] = [];
  for (const [index, test] of loaded.config.tests.entries()) {
    results.push(await runOne(test, index, loaded, options));
  }
  return results;
}

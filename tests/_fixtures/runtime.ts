/**
 * Starting runtimes from YAML in tests.
 *
 * @module
 */
import { BUILTIN_PLUGINS } from "../../cli/builtins.ts";
import { loadConfigText } from "../../core/config/mod.ts";
import { recordingLogger } from "../../core/testing.ts";
import { PluginRegistry } from "../../core/registry.ts";
import { Runtime, type RuntimeOptions } from "../../core/runtime/runtime.ts";
import {
  abortableHandler,
  fixedDevice,
  flakyHandler,
  hangHandler,
  outageHandler,
  poisonHandler,
  recordHandler,
  scaleHandler,
  scriptedDevice,
  stringifyHandler,
  stubbornDevice,
  unreachableBroker,
} from "./plugins.ts";

/** Built-ins plus the test plugins. */
export function testRegistry(): PluginRegistry {
  return PluginRegistry.of([
    ...BUILTIN_PLUGINS,
    fixedDevice,
    recordHandler,
    flakyHandler,
    unreachableBroker,
    hangHandler,
    stubbornDevice,
    abortableHandler,
    scriptedDevice,
    poisonHandler,
    outageHandler,
    scaleHandler,
    stringifyHandler,
  ]);
}

/** Loads `yaml` and creates (but does not start) a runtime. */
export async function createRuntime(
  yaml: string,
  options: Partial<RuntimeOptions> = {},
  env: Record<string, string> = {},
): Promise<{ runtime: Runtime; lines: Record<string, unknown>[] }> {
  const loaded = await loadConfigText(yaml, {
    file: "test.yaml",
    registry: testRegistry(),
    env,
    baseDir: new URL(".", import.meta.url).pathname,
  });
  const { logger, lines } = recordingLogger();
  const runtime = await Runtime.create(loaded, { logger, seed: 7, ...options });
  return { runtime, lines };
}

/**
 * Polls `condition` every `intervalMs` (5 ms; more for conditions that run a command) until
 * true; fails after `timeoutMs`.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 5,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

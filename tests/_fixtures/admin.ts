/**
 * An admin app over a test runtime.
 *
 * @module
 */
import { createAdminApp } from "../../core/admin/app.ts";
import { loadConfigText } from "../../core/config/mod.ts";
import type { Runtime } from "../../core/runtime/runtime.ts";
import { createRuntime, testRegistry } from "./runtime.ts";

/** Creates a runtime from `yaml` and an admin app over it (the runtime is not started). */
export async function adminFixture(yaml: string, env: Record<string, string> = {}) {
  const registry = testRegistry();
  const loaded = await loadConfigText(yaml, { file: "test.yaml", registry, env });
  const { runtime, lines } = await createRuntime(yaml, {}, env);
  const app = createAdminApp(runtime, {
    registry,
    redactedConfig: () => loaded.redacted,
    version: "0.0.0-test",
    env,
    secrets: loaded.secrets,
  });
  return { runtime, app, lines };
}

/** Stops a runtime if it was started. */
export async function stopQuietly(runtime: Runtime): Promise<void> {
  if (runtime.state !== "stopped") await runtime.stop();
}

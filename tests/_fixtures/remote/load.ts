/**
 * Child process of `plugin_url_test.ts`: loads three configurations that
 * list plugins by URL under `Deno.args[0]` and prints what happened as JSON.
 * It runs with `--no-lock`, so the random local URLs never enter `deno.lock`.
 *
 * @module
 */
import { builtinRegistry } from "../../../cli/builtins.ts";
import { loadConfigText } from "../../../core/config/mod.ts";
import { ConfigError } from "../../../core/errors.ts";

const base = Deno.args[0]!;
const yaml = (url: string, handlerConfig = "{}") => `
plugins: ["${url}"]
devices: { d: { type: simulated } }
brokers: { m: { type: memory } }
handlers: { r: { type: remote_discard, config: ${handlerConfig} } }
pipelines: { p: { from: [d], via: m, handlers: [r] } }
`;

async function attempt(url: string, handlerConfig?: string) {
  try {
    const loaded = await loadConfigText(yaml(url, handlerConfig), {
      file: "telemetry.yaml",
      registry: builtinRegistry(),
      env: {},
    });
    return {
      ok: true,
      source: loaded.registry.entry("handler", "remote_discard")?.source,
      config: loaded.config.handlers.r!.config,
    };
  } catch (error) {
    return {
      ok: false,
      configError: error instanceof ConfigError,
      message: error instanceof Error ? error.message : String(error),
    };
  }
}

console.log(JSON.stringify([
  await attempt(`${base}/plugin.ts`),
  await attempt(`${base}/plugin.ts`, "{ nte: x }"),
  await attempt(`${base}/missing.ts`),
]));

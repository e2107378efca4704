import assert from "node:assert/strict";
import { builtinRegistry } from "../core/builtins.ts";
import { loadConfigText } from "../core/config/mod.ts";
import { ConfigError } from "../core/errors.ts";

Deno.test("a plugin listed by http(s) URL is imported, registered and its schema applied", async () => {
  const source = await Deno.readTextFile(new URL("./_fixtures/remote/plugin.ts", import.meta.url));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/plugin.ts"
        ? new Response(source, { headers: { "content-type": "application/typescript" } })
        : new Response("Not found", { status: 404 }),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const yaml = (url: string, handlerConfig = "{}") => `
plugins: ["${url}"]
devices: { d: { type: simulated } }
brokers: { m: { type: memory } }
handlers: { r: { type: remote_discard, config: ${handlerConfig} } }
pipelines: { p: { from: [d], via: m, handlers: [r] } }
`;
  try {
    const loaded = await loadConfigText(yaml(`${base}/plugin.ts`), {
      file: "telemetry.yaml",
      registry: builtinRegistry(),
      env: {},
    });
    assert.equal(loaded.registry.entry("handler", "remote_discard")?.source, `${base}/plugin.ts`);
    assert.deepEqual(loaded.config.handlers.r!.config, { note: "" });

    await assert.rejects(
      loadConfigText(yaml(`${base}/plugin.ts`, "{ nte: x }"), {
        file: "telemetry.yaml",
        registry: builtinRegistry(),
        env: {},
      }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /handlers\.r\.config\.nte: Unknown key "nte"; did you mean "note"\?/,
        );
        return true;
      },
    );
    await assert.rejects(
      loadConfigText(yaml(`${base}/missing.ts`), {
        file: "telemetry.yaml",
        registry: builtinRegistry(),
        env: {},
      }),
      /plugins\[0\]: Cannot load plugin module "http:\/\/127\.0\.0\.1:\d+\/missing\.ts"/,
    );
  } finally {
    await server.shutdown();
  }
});

import assert from "node:assert/strict";
import { Hono } from "@hono/hono";
import { recordingLogger } from "../testing.ts";
import { isLoopback, parseListen, serveAdmin } from "./serve.ts";

Deno.test("parseListen() splits host and port, IPv6 in brackets, and refuses the rest", () => {
  assert.deepEqual(parseListen("127.0.0.1:8080"), { hostname: "127.0.0.1", port: 8080 });
  assert.deepEqual(parseListen("[::1]:9000"), { hostname: "::1", port: 9000 });
  assert.throws(() => parseListen("8080"), /Invalid listen address "8080"/);
  assert.throws(() => parseListen("host:70000"), /Invalid port/);
  assert.ok(isLoopback("127.0.0.1") && isLoopback("::1") && isLoopback("localhost"));
  assert.ok(!isLoopback("0.0.0.0"));
});

Deno.test("serving beyond loopback without a token warns loudly; with a token it does not", async () => {
  for (const hasToken of [false, true]) {
    const { logger, lines } = recordingLogger();
    const abort = new AbortController();
    const { server, address } = await serveAdmin(new Hono(), {
      listen: "0.0.0.0:0",
      hasToken,
      logger,
      signal: abort.signal,
    });
    assert.match(address, /^0\.0\.0\.0:\d+$/);
    abort.abort();
    await server.finished;
    const warned = lines.some((l) => /ADMIN API EXPOSED WITHOUT A TOKEN/.test(String(l.msg)));
    assert.equal(warned, !hasToken);
  }
});

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

const ADMIN = { enabled: true, ingest_tokens: [], tokens: [] };

Deno.test("serving beyond loopback without a token is refused, naming admin.token; with one it serves", async () => {
  const abort = new AbortController();
  await assert.rejects(
    serveAdmin(new Hono(), {
      admin: { ...ADMIN, listen: "0.0.0.0:0" },
      logger: recordingLogger().logger,
      signal: abort.signal,
    }),
    /beyond loopback, without a token.*Set admin\.token/,
  );
  const { address, finished } = await serveAdmin(new Hono(), {
    admin: { ...ADMIN, listen: "0.0.0.0:0", token: "t0k3n" },
    logger: recordingLogger().logger,
    signal: abort.signal,
  });
  assert.match(address, /^0\.0\.0\.0:\d+$/);
  abort.abort();
  await finished;
});

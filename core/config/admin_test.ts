import assert from "node:assert/strict";
import { allowedHosts, exposureProblem, isLoopback, normalHost, scopedTokens } from "./admin.ts";

const ADMIN = { enabled: true, ingest_tokens: [], tokens: [] };

Deno.test("scopedTokens() gives admin.token every scope, ingest tokens ingest, and implied scopes", () => {
  const tokens = scopedTokens({
    token: "a",
    ingest_tokens: ["i", ""],
    tokens: [{ token: "o", scopes: ["admin"] }, { token: "r", scopes: ["read"] }],
  });
  const scopes = Object.fromEntries(tokens.map((t) => [t.token, [...t.scopes].sort()]));
  assert.deepEqual(scopes, {
    a: ["admin", "ingest", "metrics", "read"],
    i: ["ingest"],
    o: ["admin", "metrics", "read"],
    r: ["metrics", "read"],
  });
  assert.deepEqual(scopedTokens({ token: "", ingest_tokens: [], tokens: [] }), []);
});

Deno.test("exposureProblem() refuses beyond loopback without a read or admin token", () => {
  assert.equal(exposureProblem({ ...ADMIN, listen: "127.0.0.1:8080" }), undefined);
  assert.equal(exposureProblem({ ...ADMIN, listen: "[::1]:8080" }), undefined);
  assert.equal(exposureProblem({ ...ADMIN, listen: "localhost:0" }), undefined);
  assert.match(exposureProblem({ ...ADMIN, listen: "0.0.0.0:8080" })!, /Set admin\.token/);
  assert.match(
    exposureProblem({ ...ADMIN, listen: "10.0.0.5:8080", ingest_tokens: ["i"] })!,
    /beyond loopback/,
  );
  assert.equal(exposureProblem({ ...ADMIN, listen: "0.0.0.0:8080", token: "t" }), undefined);
  assert.equal(exposureProblem({ ...ADMIN, enabled: false, listen: "0.0.0.0:8080" }), undefined);
});

Deno.test("allowedHosts() defaults to loopback names and the listen host; wildcards accept any", () => {
  assert.deepEqual(
    [...allowedHosts({ listen: "192.168.1.5:8080" })!].sort(),
    ["127.0.0.1", "192.168.1.5", "::1", "localhost"],
  );
  assert.equal(allowedHosts({ listen: "0.0.0.0:8080" }), undefined);
  assert.equal(allowedHosts({ listen: "[::]:8080" }), undefined);
  assert.equal(allowedHosts({ listen: "127.0.0.1:8080", allowed_hosts: ["*"] }), undefined);
  assert.deepEqual([...allowedHosts({ listen: "127.0.0.1:1", allowed_hosts: ["A.example"] })!], [
    "a.example",
  ]);
});

Deno.test("normalHost() drops ports, brackets and case; isLoopback() knows loopback names", () => {
  assert.equal(normalHost("LocalHost:8080"), "localhost");
  assert.equal(normalHost("[::1]:8080"), "::1");
  assert.equal(normalHost("::1"), "::1");
  assert.equal(normalHost("example.com."), "example.com");
  assert.ok(isLoopback("127.0.0.2") && isLoopback("[::1]") && isLoopback("app.localhost"));
  assert.ok(!isLoopback("0.0.0.0") && !isLoopback("10.0.0.1"));
});

/**
 * The admin and ingest surface as an attacker on the same machine (or a web
 * page the operator visits) would try it: secrets on every surface, Host and
 * Origin checks, token scopes per route, refusal to listen beyond loopback
 * without a token, malformed parameters on every route, and TLS.
 */
import assert from "node:assert/strict";
import type { Hono } from "@hono/hono";
import { createAdminApp, type ReloadOutcome } from "../core/admin/app.ts";
import { serveAdmin } from "../core/admin/serve.ts";
import { loadConfigText } from "../core/config/mod.ts";
import { createLogger } from "../core/log.ts";
import { Runtime } from "../core/runtime/runtime.ts";
import { recordingLogger } from "../core/testing.ts";
import { stopQuietly } from "./_fixtures/admin.ts";
import { collect, runTask, spawnTask } from "./_fixtures/cli.ts";
import { testRegistry, waitFor } from "./_fixtures/runtime.ts";

// ---------------------------------------------------------------- fixtures

/** An admin app over a runtime logging through the real logger, as `run` builds them. */
async function secureFixture(
  yaml: string,
  env: Record<string, string> = {},
  reload?: () => Promise<ReloadOutcome>,
) {
  const registry = testRegistry();
  const loaded = await loadConfigText(yaml, { file: "test.yaml", registry, env });
  const logs: string[] = [];
  const logger = createLogger({
    level: "debug",
    format: "json",
    sink: (line) => logs.push(line),
    secrets: loaded.secrets,
  });
  const runtime = await Runtime.create(loaded, { logger, seed: 7 });
  const app = createAdminApp(runtime, {
    registry,
    redactedConfig: () => loaded.redacted,
    version: "0.0.0-test",
    env,
    secrets: loaded.secrets,
    ...(reload ? { reload } : {}),
  });
  return { app, runtime, logs };
}

const PIPELINE = `
devices: { boiler: { type: fixed, config: { count: 0 } } }
brokers: { mem: { type: memory } }
handlers: { rec: { type: record, config: { key: security } } }
pipelines:
  main: { from: [boiler], via: mem, handlers: [rec], batch: { max_samples: 10, max_wait: 5ms } }
`;

const reloaded = (): Promise<ReloadOutcome> =>
  Promise.resolve({ ok: true, restarted: [], unchanged: ["main"] });

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json", ...headers },
});

// ---------------------------------------------------------------- secrets × surfaces

const ENV = {
  API_TOKEN: "Env-S3cret-value",
  DB_URL: "postgres://app:pg-Pa55word@db:5432/x",
  HOOK: "https://hooks.slack.com/services/T0AAA/B0BBB/XoXbSlackToken1234",
  ALERTS: "https://alerts.example/notify?api_key=k3y-param-value",
};

/** Each shape of secret, and the text that must never be shown. */
const SHAPES: Record<string, string> = {
  "an environment value of a secret-named variable": "Env-S3cret-value",
  "a password in a URL": "pg-Pa55word",
  "a token-like URL path (Slack webhook)": "XoXbSlackToken1234",
  "a secret query parameter (?api_key=)": "k3y-param-value",
  "the value of a secret-looking key (admin.token)": "literal-admin-t0ken",
};

const LEAK = "Failed ${DB_URL} ${HOOK} ${ALERTS} ${API_TOKEN} literal-admin-t0ken";

const LEAKY = `
admin: { token: literal-admin-t0ken }
devices: { boiler: { type: fixed, config: { count: 0 } } }
brokers: { mem: { type: memory } }
handlers:
  bad: { type: flaky, config: { permanent: true, message: "${LEAK}" } }
  notify: { type: flaky, config: { message: "\${HOOK} \${ALERTS}" } }
pipelines:
  main: { from: [boiler], via: mem, handlers: [bad], batch: { max_samples: 1, max_wait: 1ms } }
`;

const ADMIN = { authorization: "Bearer literal-admin-t0ken" };

Deno.test("no shape of secret appears on any surface: logs, config, validate, DLQ, tasks, status, tap, start-up errors", async () => {
  const { app, runtime, logs } = await secureFixture(LEAKY, ENV);
  runtime.start();
  const surfaces: Record<string, string> = {};

  // The tap sees a sample whose tags carry every shape.
  const controller = new AbortController();
  const tap = await app.request("/api/v1/tap", { headers: ADMIN, signal: controller.signal });
  const reader = tap.body!.getReader();
  let tapText = "";
  const readUntil = async (marker: string) => {
    while (!tapText.includes(marker)) {
      const { value, done } = await reader.read();
      if (done) break;
      tapText += new TextDecoder().decode(value);
    }
  };
  await readUntil("event: ready");
  const leakText = LEAK.replace(/\$\{(\w+)\}/g, (_, name: string) => ENV[name as keyof typeof ENV]);
  const ingest = await app.request(
    "/api/v1/samples",
    json({ device: "boiler", metric: "t", value: 1, seq: 1, tags: { note: leakText } }, ADMIN),
  );
  assert.equal(ingest.status, 202, await ingest.clone().text());
  await readUntil("event: samples");
  await readUntil("\n\n");
  controller.abort();
  await reader.cancel().catch(() => {});
  surfaces.tap = tapText;

  const broker = runtime.brokers.get("mem")!;
  await waitFor(async () => (await broker.depth()).dead === 1, "the task to be dead-lettered");
  const get = async (path: string, init: RequestInit = {}) => {
    const res = await app.request(path, { ...init, headers: { ...ADMIN, ...init.headers } });
    return { status: res.status, text: await res.text() };
  };
  const dlq = await get("/api/v1/dlq");
  surfaces.dlq = dlq.text;
  const id = JSON.parse(dlq.text).items[0].task.id;
  surfaces.task = (await get(`/api/v1/tasks/${id}`)).text;
  surfaces.config = (await get("/api/v1/config")).text;
  surfaces.status = (await get("/api/v1/status")).text;
  surfaces.devices = (await get("/api/v1/devices")).text;
  const validate = await get("/api/v1/config/validate", {
    method: "POST",
    body: 'role: ${DB_URL}\nlog: { level: "${API_TOKEN}" }\nadmin: { listen: "${HOOK}" }\n' +
      "brokers:\n  b:\n    type: ${ALERTS}\n",
    headers: { "content-type": "application/yaml" },
  });
  assert.equal(validate.status, 422);
  surfaces.validate = validate.text;
  await runtime.stop();
  surfaces.logs = logs.join("\n");

  // Each surface did carry the material, hidden.
  for (const name of ["tap", "dlq", "task", "config", "logs"]) {
    assert.match(surfaces[name]!, /\*\*\*/, `${name} shows redacted material`);
  }
  assert.match(surfaces.dlq!, /Failed postgres:\/\/app:\*\*\*@db:5432\/x/);
  const problems = JSON.parse(surfaces.validate!).problems.map((p: { text: string }) => p.text);
  assert.ok(
    problems.includes(
      '<input>:1:7 role: Expected one of "all", "hub", "processor", got the value of ${DB_URL}',
    ),
    problems.join("\n"),
  );
  assert.ok(
    problems.some((t: string) => /log\.level: .*got the value of \$\{API_TOKEN\}$/.test(t)),
    problems.join("\n"),
  );

  // Start-up errors: a plugin whose create() quotes its settings.
  const startup = await runTask(
    "run",
    ["--config", "tests/_fixtures/leaky_plugin/telemetry.yaml"],
    {
      env: { LEAKY_URL: ENV.DB_URL, LEAKY_NOTE: `${ENV.HOOK} ${ENV.ALERTS}` },
    },
  );
  assert.equal(startup.code, 1, startup.stderr);
  assert.match(startup.stderr, /Cannot reach "postgres:\/\/app:\*\*\*@db:5432\/x"/);
  surfaces["start-up error"] = startup.stdout + startup.stderr;
  // The CLI's validate of a file quoting the environment.
  const cliValidate = await runTask("validate", ["tests/_fixtures/leaky_plugin/env_role.yaml"], {
    env: ENV,
  });
  assert.equal(cliValidate.code, 2);
  surfaces["validate (CLI)"] = cliValidate.stdout + cliValidate.stderr;

  for (const [surface, text] of Object.entries(surfaces)) {
    for (const [shape, secret] of Object.entries(SHAPES)) {
      assert.ok(!text.includes(secret), `${shape} leaks through ${surface}:\n${text}`);
    }
  }
});

Deno.test("config/validate over HTTP gives the CLI's problems and positions, and never imports a module", async () => {
  const { app, runtime } = await secureFixture(PIPELINE);
  const file = "tests/_fixtures/leaky_plugin/validate_case.yaml";
  const text = await Deno.readTextFile(file);
  const cli = await runTask("validate", [file]);
  assert.equal(cli.code, 2);
  const expected = cli.stderr.trim().split("\n").slice(0, -1).map((l) =>
    l.replace(file, "<input>")
  );
  const res = await app.request("/api/v1/config/validate", {
    method: "POST",
    body: text,
    headers: { "content-type": "application/yaml" },
  });
  assert.equal(res.status, 422);
  const body = await res.json();
  // The registries differ (the CLI has no test plugins); compare what both know.
  // The module is a problem at the same place; the CLI tried to import it, HTTP never does.
  const known = (l: string) =>
    l.replace(/; known \w+ types: .*$/, "").replace(/ Known .*$/, "")
      .replace(/(plugins\[0\]): .*/, "$1: (module problem)");
  const texts = body.problems.map((p: { text: string }) => p.text);
  assert.deepEqual(texts.map(known), expected.map(known));
  assert.ok(expected.length >= 5, expected.join("\n"));
  assert.ok(
    texts.some((t: string) =>
      /^<input>:2:5 plugins\[0\]: Plugin module "\.\/evil\.ts" is not loaded in this process/.test(
        t,
      )
    ),
    texts.join("\n"),
  );
  await stopQuietly(runtime);
});

// ---------------------------------------------------------------- Host and Origin

Deno.test("browser-borne requests are refused by Host, Origin and content type; curl-like ones pass", async () => {
  const { app, runtime } = await secureFixture(PIPELINE, {}, reloaded);
  const sample = JSON.stringify({ device: "boiler", metric: "t", value: 1 });
  const evil = { origin: "http://evil.example" };
  const rows: [string, string, RequestInit, number][] = [
    ["foreign Host on a read", "http://evil.example/api/v1/config", {}, 403],
    ["foreign Host with a port", "http://evil.example:8080/api/v1/status", {}, 403],
    ["localhost", "http://localhost:8080/api/v1/config", {}, 200],
    ["127.0.0.1", "http://127.0.0.1:8080/api/v1/config", {}, 200],
    ["[::1]", "http://[::1]:8080/api/v1/config", {}, 200],
    ["foreign Origin on a read (browsers cannot read the answer)", "/api/v1/status", {
      headers: evil,
    }, 200],
    ["foreign Origin, text/plain ingest", "/api/v1/samples", {
      method: "POST",
      body: "t,device=boiler v=1",
      headers: { ...evil, "content-type": "text/plain" },
    }, 403],
    ["foreign Origin, replay", "/api/v1/dlq/replay", json({ all: true }, evil), 403],
    ["foreign Origin, reload", "/api/v1/reload", { method: "POST", headers: evil }, 403],
    ["foreign Origin, purge", "/api/v1/dlq?all=true", { method: "DELETE", headers: evil }, 403],
    ["Origin null, reload", "/api/v1/reload", { method: "POST", headers: { origin: "null" } }, 403],
    ["same origin, reload", "http://localhost:8080/api/v1/reload", {
      method: "POST",
      headers: { origin: "http://localhost:8080" },
    }, 200],
    ["text/plain replay", "/api/v1/dlq/replay", {
      method: "POST",
      body: '{"all":true}',
      headers: { "content-type": "text/plain" },
    }, 415],
    ["form replay", "/api/v1/dlq/replay", {
      method: "POST",
      body: "all=true",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    }, 415],
    ["form reload", "/api/v1/reload", {
      method: "POST",
      body: "",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    }, 415],
    ["text/plain validate", "/api/v1/config/validate", {
      method: "POST",
      body: PIPELINE,
      headers: { "content-type": "text/plain" },
    }, 415],
    ["curl: JSON ingest", "/api/v1/samples", {
      method: "POST",
      body: sample,
      headers: { "content-type": "application/json" },
    }, 202],
    ["curl: JSON replay", "/api/v1/dlq/replay", json({ all: true }), 200],
    ["curl: reload without a body", "/api/v1/reload", { method: "POST" }, 200],
    ["curl: purge", "/api/v1/dlq?all=true", { method: "DELETE" }, 200],
    ["curl: YAML validate", "/api/v1/config/validate", {
      method: "POST",
      body: PIPELINE,
      headers: { "content-type": "application/yaml" },
    }, 200],
  ];
  for (const [name, url, init, status] of rows) {
    const res = await app.request(url, init);
    const text = await res.text();
    assert.equal(res.status, status, `${name}: ${text}`);
    if (status >= 400) {
      assert.equal(res.headers.get("content-type"), "application/problem+json", name);
      const { detail } = JSON.parse(text);
      if (name.startsWith("foreign Host")) {
        assert.match(detail, /^Host "evil\.example" is not accepted/);
      }
      if (name.startsWith("foreign Origin")) {
        assert.match(detail, /^Origin "http:\/\/evil\.example" may not change state/);
      }
      if (status === 415) assert.match(detail, /^Send .*, not "/);
    }
  }
  // Nothing refused reached the queue or the broker.
  assert.equal(runtime.pipelines.get("main")!.queue!.size, 1, "only the curl-like sample");
  await stopQuietly(runtime);
});

Deno.test("admin.allowed_hosts and admin.allowed_origins widen the defaults; a wildcard listen accepts any Host", async () => {
  const configured = await secureFixture(
    `${PIPELINE}\nadmin: { allowed_hosts: [telemetry.internal], allowed_origins: ["https://console.example"] }\n`,
    {},
    reloaded,
  );
  const at = (url: string, init: RequestInit = {}) => configured.app.request(url, init);
  assert.equal((await at("http://telemetry.internal:8080/api/v1/status")).status, 200);
  assert.equal((await at("http://localhost:8080/api/v1/status")).status, 403);
  const console = await at("http://telemetry.internal/api/v1/reload", {
    method: "POST",
    headers: { origin: "https://console.example" },
  });
  assert.equal(console.status, 200);
  await stopQuietly(configured.runtime);

  const fleet = await secureFixture(
    `${PIPELINE}\nadmin: { listen: "0.0.0.0:8080", token: t0k3n }\n`,
  );
  const res = await fleet.app.request("http://hub:8080/api/v1/status", {
    headers: { authorization: "Bearer t0k3n" },
  });
  assert.equal(res.status, 200);
  await stopQuietly(fleet.runtime);
});

// ---------------------------------------------------------------- token scopes

Deno.test("token scopes per route: ingest, read, admin, metrics, and the legacy settings", async () => {
  const { app, runtime } = await secureFixture(
    `${PIPELINE}
admin:
  token: legacy-admin
  ingest_tokens: [legacy-ingest]
  metrics_auth: true
  tokens:
    - { token: fleet-ingest, scopes: [ingest] }
    - { token: dashboard, scopes: [read] }
    - { token: operator, scopes: [admin] }
    - { token: prometheus, scopes: [metrics] }
`,
    {},
    reloaded,
  );
  type Route = [string, string, () => RequestInit];
  const routes: Record<string, Route> = {
    ingest: ["POST", "/api/v1/samples", () => ({
      body: JSON.stringify({ device: "boiler", metric: "t", value: 1 }),
      headers: { "content-type": "application/json" },
    })],
    status: ["GET", "/api/v1/status", () => ({})],
    devices: ["GET", "/api/v1/devices", () => ({})],
    config: ["GET", "/api/v1/config", () => ({})],
    dlq: ["GET", "/api/v1/dlq", () => ({})],
    task: ["GET", "/api/v1/tasks/none", () => ({})],
    validate: ["POST", "/api/v1/config/validate", () => ({
      body: PIPELINE,
      headers: { "content-type": "application/yaml" },
    })],
    reload: ["POST", "/api/v1/reload", () => ({})],
    replay: ["POST", "/api/v1/dlq/replay", () => ({
      body: '{"all":true}',
      headers: { "content-type": "application/json" },
    })],
    purge: ["DELETE", "/api/v1/dlq?all=true", () => ({})],
    metrics: ["GET", "/metrics", () => ({})],
    healthz: ["GET", "/healthz", () => ({})],
  };
  const READ = ["status", "devices", "config", "dlq", "task", "validate", "metrics"];
  const ADMIN_ROUTES = ["reload", "replay", "purge"];
  const may: Record<string, string[]> = {
    "legacy-admin": Object.keys(routes),
    "legacy-ingest": ["ingest", "healthz"],
    "fleet-ingest": ["ingest", "healthz"],
    dashboard: [...READ, "healthz"],
    operator: [...READ, ...ADMIN_ROUTES, "healthz"],
    prometheus: ["metrics", "healthz"],
  };
  for (const [token, allowed] of Object.entries(may)) {
    for (const [name, [method, path, init]] of Object.entries(routes)) {
      const base = init();
      const res = await app.request(path, {
        method,
        ...base,
        headers: { ...base.headers as Record<string, string>, authorization: `Bearer ${token}` },
      });
      const text = await res.text();
      if (allowed.includes(name)) {
        assert.ok(![401, 403].includes(res.status), `${token} on ${name}: ${res.status} ${text}`);
      } else {
        assert.equal(res.status, 403, `${token} on ${name}: ${text}`);
        assert.match(JSON.parse(text).detail, /lacks the "\w+" scope/);
      }
      assert.ok(!text.includes(token) || name === "healthz", `${name} shows ${token}`);
    }
  }
  for (const [name, [method, path, init]] of Object.entries(routes)) {
    const res = await app.request(path, { method, ...init() });
    assert.equal(res.status, name === "healthz" ? 200 : 401, `no token on ${name}`);
  }
  await stopQuietly(runtime);
});

Deno.test("without metrics_auth, /metrics stays open while every API route needs a token", async () => {
  const { app, runtime } = await secureFixture(`${PIPELINE}\nadmin: { token: t0k3n }\n`);
  assert.equal((await app.request("/metrics")).status, 200);
  assert.equal((await app.request("/api/v1/status")).status, 401);
  await stopQuietly(runtime);
});

// ---------------------------------------------------------------- beyond loopback

Deno.test("run and validate refuse an admin API beyond loopback without a token, naming the setting", async () => {
  for (const task of ["validate", "run"]) {
    const r = await runTask(task, task === "run" ? ["--for", "10s"] : [], {
      env: { TELEMETRY_ADMIN_LISTEN: "0.0.0.0:0" },
    });
    assert.equal(r.code, 2, `${task}: ${r.stderr}`);
    assert.match(
      r.stderr,
      /^telemetry\.yaml:\d+:\d+ admin\.listen: The admin API would listen on the value of \$\{TELEMETRY_ADMIN_LISTEN\}, beyond loopback, without a token.*Set admin\.token/m,
      task,
    );
  }
});

// ---------------------------------------------------------------- malformed input on every route

const BAD_VALUES = ["abc", "-1", "", "%", "%zz", "0", "1e309", "x".repeat(5000), "[]", "null"];
const BAD_BODIES: [string, string][] = [
  ["application/json", "{"],
  ["application/json", "[1"],
  ["application/json", "null"],
  ["application/json", '"text"'],
  ["application/json", '{"ids": "x"}'],
  ["application/json", '{"ids": [1]}'],
  ["application/json", '{"type": 5}'],
  ["application/json", "\u0000\u0001\u00ff"],
  ["application/yaml", "a: [\n"],
  ["application/yaml", "- 1\n- 2\n"],
  ["application/x-ndjson", "{\n}"],
  ["text/plain", "weather,device= temp=\n"],
  ["application/octet-stream", "\u0000"],
  ["", "junk"],
];

Deno.test("every route of /openapi.json answers malformed parameters and bodies with a 4xx problem, never a 500", async () => {
  const { app, runtime, logs } = await secureFixture(PIPELINE, {}, reloaded);
  runtime.start();
  const doc = await (await app.request("/openapi.json")).json();
  const seen: string[] = [];
  const check = async (method: string, url: string, init: RequestInit, what: string) => {
    const controller = new AbortController();
    const res = await app.request(url, { method, ...init, signal: controller.signal });
    const type = res.headers.get("content-type") ?? "";
    const text = type.includes("event-stream") ? "" : await res.text();
    controller.abort();
    await res.body?.cancel().catch(() => {});
    seen.push(`${method} ${url.slice(0, 80)} -> ${res.status}`);
    assert.ok(res.status < 500, `${what}: ${method} ${url.slice(0, 200)} -> ${res.status} ${text}`);
    // validate and reload answer 422 with their documented {valid|reloaded, problems} body.
    if (res.status >= 400 && !(res.status === 422 && /validate|reload/.test(url))) {
      assert.equal(type, "application/problem+json", `${what}: ${method} ${url.slice(0, 200)}`);
      assert.equal(JSON.parse(text).status, res.status);
    }
  };
  const paths = doc.paths as Record<
    string,
    Record<string, { parameters?: { name: string; in: string }[]; requestBody?: unknown }>
  >;
  for (const [template, operations] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const M = method.toUpperCase();
      const params = op.parameters ?? [];
      const pathOf = (value: string) =>
        template.replace(/\{(\w+)\}/g, () => encodeURIComponent(value).replaceAll("%25", "%"));
      for (const value of BAD_VALUES) {
        // Each path parameter malformed, each query parameter malformed alone, then all at once.
        await check(M, pathOf(value), {}, "path parameter");
        const queries = params.filter((p) => p.in === "query");
        for (const q of queries) {
          await check(M, `${pathOf("x")}?${q.name}=${value}`, {}, `query ${q.name}`);
        }
        if (queries.length > 1) {
          await check(
            M,
            `${pathOf("x")}?${queries.map((q) => `${q.name}=${value}`).join("&")}`,
            {},
            "all queries",
          );
        }
      }
      if (M === "POST" || M === "PUT" || M === "PATCH" || M === "DELETE") {
        for (const [type, body] of BAD_BODIES) {
          await check(M, pathOf("x"), {
            body,
            headers: type ? { "content-type": type } : {},
          }, `body ${type}`);
        }
      }
    }
  }
  assert.ok(seen.some((s) => s.startsWith("GET /api/v1/dlq?cursor=abc -> 400")), seen.join("\n"));
  await runtime.stop();
  assert.ok(!logs.some((l) => /Admin API request failed/.test(l)), "no request failed inside");
});

Deno.test("GET /api/v1/dlq with a malformed cursor is a 400 problem", async () => {
  const { app, runtime } = await secureFixture(PIPELINE);
  const res = await app.request("/api/v1/dlq?cursor=abc");
  assert.equal(res.status, 400);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  assert.equal((await res.json()).title, "Invalid cursor");
  await stopQuietly(runtime);
});

// ---------------------------------------------------------------- TLS

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A CA and a server certificate for localhost and 127.0.0.1 signed by it, in `dir`. */
async function makeCertificates(
  dir: string,
  name: string,
): Promise<{ ca: string; cert: string; key: string }> {
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${name} CA`,
    "-keyout",
    `${name}-ca.key`,
    "-out",
    `${name}-ca.pem`,
  ], dir);
  await openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  ], dir);
  await Deno.writeTextFile(`${dir}/${name}.ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  await openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${name}-ca.pem`,
    "-CAkey",
    `${name}-ca.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.pem`,
  ], dir);
  return {
    ca: await Deno.readTextFile(`${dir}/${name}-ca.pem`),
    cert: `${dir}/${name}.pem`,
    key: `${dir}/${name}.key`,
  };
}

async function fetchWith(ca: string, url: string): Promise<Response> {
  const client = Deno.createHttpClient({ caCerts: [ca] });
  try {
    const res = await fetch(url, { client });
    await res.body?.cancel();
    return res;
  } finally {
    client.close();
  }
}

Deno.test("the admin API serves TLS that a verifying client accepts, and a reload serves renewed files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "th_tls_" });
  const { app, runtime } = await secureFixture(PIPELINE);
  const abort = new AbortController();
  try {
    const first = await makeCertificates(dir, "first");
    await Deno.copyFile(first.cert, `${dir}/server.pem`);
    await Deno.copyFile(first.key, `${dir}/server.key`);
    const listener = await serveAdmin(app as Hono, {
      admin: {
        enabled: true,
        listen: "127.0.0.1:0",
        ingest_tokens: [],
        tokens: [],
        tls: { cert_file: "server.pem", key_file: "server.key" },
      },
      baseDir: dir,
      logger: recordingLogger().logger,
      signal: abort.signal,
    });
    assert.equal(listener.scheme, "https");
    const port = listener.address.split(":").at(-1);
    const url = `https://localhost:${port}/healthz`;
    assert.equal((await fetchWith(first.ca, url)).status, 200);
    await assert.rejects(
      fetch(url),
      TypeError,
      "no trust, no answer",
    );
    assert.equal(await listener.reloadTls(), "unchanged");

    const second = await makeCertificates(dir, "second");
    await Deno.copyFile(second.cert, `${dir}/server.pem`);
    await Deno.copyFile(second.key, `${dir}/server.key`);
    assert.equal(await listener.reloadTls(), "reloaded");
    assert.equal(listener.address.split(":").at(-1), port, "same address");
    assert.equal((await fetchWith(second.ca, url)).status, 200);
    await assert.rejects(fetchWith(first.ca, url), TypeError);
    abort.abort();
    await listener.finished;
  } finally {
    abort.abort();
    await stopQuietly(runtime);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the compose file requires TELEMETRY_ADMIN_TOKEN instead of defaulting it", async () => {
  const compose = await Deno.readTextFile(new URL("../compose.yaml", import.meta.url));
  const line = compose.split("\n").find((l) => /^\s*TELEMETRY_ADMIN_TOKEN:/.test(l));
  assert.ok(line, "the hub gets a token");
  assert.match(line, /\$\{TELEMETRY_ADMIN_TOKEN:\?[^}]+\}/);
  assert.doesNotMatch(compose, /change-me|TELEMETRY_ADMIN_TOKEN:-/);
});

Deno.test("run serves the admin API over TLS and a SIGHUP reload serves renewed certificate files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "th_tls_run_" });
  try {
    const first = await makeCertificates(dir, "first");
    const second = await makeCertificates(dir, "second");
    await Deno.copyFile(first.cert, `${dir}/server.pem`);
    await Deno.copyFile(first.key, `${dir}/server.key`);
    await Deno.writeTextFile(
      `${dir}/telemetry.yaml`,
      `admin:
  listen: 127.0.0.1:0
  tls: { cert_file: server.pem, key_file: server.key }
devices: { sim: { type: simulated } }
brokers: { mem: { type: memory } }
pipelines: { main: { from: [sim], via: mem } }
`,
    );
    const child = await spawnTask("run", ["--config", `${dir}/telemetry.yaml`], {});
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    try {
      await waitFor(() => /"msg":"Admin API listening"/.test(stderr.text()), "the API", 30_000);
      const address = stderr.text().match(/"msg":"Admin API listening","address":"([^"]+)"/)![1]!;
      const url = `https://localhost:${address.split(":").at(-1)}/healthz`;
      assert.equal((await fetchWith(first.ca, url)).status, 200);
      await Deno.copyFile(second.cert, `${dir}/server.pem`);
      await Deno.copyFile(second.key, `${dir}/server.key`);
      child.kill("SIGHUP");
      await waitFor(
        () => fetchWith(second.ca, url).then((r) => r.status === 200, () => false),
        "the renewed certificate to be served",
        30_000,
      );
      await assert.rejects(fetchWith(first.ca, url), TypeError);
    } finally {
      child.kill("SIGTERM");
    }
    const status = await child.status;
    await stdout.done;
    assert.equal(status.code, 0, await stderr.done);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

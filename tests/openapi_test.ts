import assert from "node:assert/strict";
import { routeAccess } from "../core/admin/app.ts";
import { adminFixture, stopQuietly } from "./_fixtures/admin.ts";

const CONFIG = `
devices:
  boiler: { type: fixed, config: { count: 0 } }
brokers:
  mem: { type: memory }
handlers:
  rec: { type: record, config: { key: openapi } }
pipelines:
  main: { from: [boiler], via: mem, handlers: [rec] }
`;

/** The pinned linter (deno.json "imports"), run through Deno: only the npm registry is needed. */
const REDOCLY = "npm:@redocly/cli@2.77.0";

interface Operation {
  operationId?: string;
  "x-scope"?: string;
  security?: unknown[];
  responses: Record<string, { content?: Record<string, unknown> }>;
}
type Paths = Record<string, Record<string, Operation>>;

async function document() {
  const { app, runtime } = await adminFixture(CONFIG);
  const res = await app.request("/openapi.json");
  assert.equal(res.status, 200);
  const doc = await res.json();
  await stopQuietly(runtime);
  return { app, doc, paths: doc.paths as Paths };
}

function operations(paths: Paths): [string, string, Operation][] {
  return Object.entries(paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]): [string, string, Operation] => [method, path, op])
  );
}

Deno.test("every route the app serves is in openapi.json, and nothing else", async () => {
  const { app, paths } = await document();
  // Walk what Hono registered (middleware is "ALL"); ":id" is "{id}" in OpenAPI.
  const served = new Set(
    app.routes.filter((r) => r.method !== "ALL").map((r) =>
      `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`
    ),
  );
  const documented = new Set(operations(paths).map(([method, path]) => `${method} ${path}`));
  assert.ok(served.size >= 19, `${served.size} routes`);
  assert.deepEqual([...served].filter((r) => !documented.has(r)), [], "served but undocumented");
  assert.deepEqual([...documented].filter((r) => !served.has(r)), [], "documented but not served");
});

Deno.test("every operation has a unique operationId, its guard's scope and problem+json 4xx", async () => {
  const { paths } = await document();
  const ids = new Set<string>();
  for (const [method, path, op] of operations(paths)) {
    const where = `${method} ${path}`;
    assert.ok(op.operationId, where);
    assert.ok(!ids.has(op.operationId), `${where}: operationId ${op.operationId} twice`);
    ids.add(op.operationId);
    const access = routeAccess(method.toUpperCase(), path.replace(/\{(\w+)\}/g, ":$1"));
    assert.equal(op["x-scope"], access === "public" ? undefined : access, where);
    assert.ok(op.responses["403"], `${where}: 403 (Host, Origin)`);
    if (access !== "public") assert.ok(op.responses["401"], `${where}: 401`);
    for (const [status, response] of Object.entries(op.responses)) {
      if (!/^4/.test(status)) continue;
      assert.deepEqual(
        Object.keys(response.content ?? {}),
        ["application/problem+json"],
        `${where} ${status}`,
      );
    }
  }
});

Deno.test("openapi.json passes @redocly/cli lint with no error and no warning", async () => {
  const { doc } = await document();
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/openapi.json`;
    await Deno.writeTextFile(file, JSON.stringify(doc));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", REDOCLY, "lint", "--format=json", file],
      env: { REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `${stdout}\n${stderr}`);
    const report = JSON.parse(stdout) as {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; message: string }[];
    };
    const listed = report.problems.map((p) => `${p.ruleId}: ${p.message}`).join("\n");
    assert.equal(report.totals.errors, 0, listed);
    assert.equal(report.totals.warnings, 0, listed);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

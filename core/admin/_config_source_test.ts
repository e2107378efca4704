import assert from "node:assert/strict";
import { redactText } from "../redact.ts";
import { parseDocument } from "yaml";
import { configSourceRoutes, redactYaml } from "./_config_source.ts";

const TEXT = `# the boiler room
admin:
  token: s3cret-token
handlers:
  store: { type: store, config: { url: "postgres://app:pw@db/x" } }
  alert: { type: alert, config: { url: "\${ALERT_URL}" } }
`;

function routes(file: string, read: (path: string) => Promise<string>) {
  return configSourceRoutes({
    file: () => file,
    read,
    redact: (text) => redactText(text, new Set(["s3cret-token"])),
  });
}

Deno.test("config/source gives the file as written with its secrets hidden", async () => {
  const app = routes("/etc/telemetry.yaml", (path) => {
    assert.equal(path, "/etc/telemetry.yaml");
    return Promise.resolve(TEXT);
  });
  const body = await (await app.request("/config/source")).json();
  assert.equal(body.file, "/etc/telemetry.yaml");
  assert.match(body.text, /^# the boiler room\n/, "comments kept");
  assert.match(body.text, /token: "\*\*\*"\n/, "quoted: a bare *** is a YAML alias");
  assert.match(body.text, /url: "postgres:\/\/app:\*\*\*@db\/x" \}/);
  assert.match(body.text, /\$\{ALERT_URL\}/, "references kept as written");
  assert.doesNotMatch(body.text, /s3cret|:pw@/);
});

Deno.test("redactYaml keeps the document's shape, lines and comments; only secrets change", () => {
  const text = `# keep me; old token s3cret-token
a: { token: s3cret-token, n: 1 } # s3cret-token
b: |
  s3cret-token
c: [x, 's3cret-token']
`;
  const out = redactYaml(text, (t) => redactText(t, new Set(["s3cret-token"])));
  assert.equal(
    out,
    `# keep me; old token ***
a: { token: "***", n: 1 } # ***
b: "***\\n"
c: [x, "***"]
`,
  );
  assert.equal(parseDocument(out).errors.length, 0);
});

Deno.test("config/source is 404 problem+json without a readable file", async () => {
  for (
    const app of [
      routes("<input>", () => Promise.reject(new Error("not called"))),
      routes("/gone.yaml", () => Promise.reject(new Deno.errors.NotFound("No such file"))),
    ]
  ) {
    const res = await app.request("/config/source");
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    await res.body?.cancel();
  }
});

import assert from "node:assert/strict";
import opcua, { certificateUri } from "./mod.ts";
import { testContext } from "../../core/testing.ts";
import { needs } from "../../tests/_fixtures/tools.ts";

const endpoint = "opc.tcp://127.0.0.1:4840";
const nodes = [{ node_id: "ns=1;s=A", metric: "a" }];
const issues = (config: unknown) =>
  opcua.config.safeParse(config).error?.issues.map((i) => i.message).join("; ") ?? "";

Deno.test("opcua config takes an opc.tcp endpoint and a node table, security None by default", () => {
  const parsed = opcua.config.parse({ endpoint, nodes });
  assert.equal(parsed.security.mode, "None");
  assert.equal(parsed.publishing_interval, 1000);
  assert.equal(parsed.sampling_interval, 1000);
  assert.equal(parsed.queue_size, 10);
  assert.equal(parsed.pki_dir, "data/opcua-pki");
  assert.match(issues({ endpoint: "http://x", nodes }), /Expected an endpoint URL/);
  assert.equal(opcua.config.safeParse({ endpoint, nodes: [] }).success, false);
  assert.equal(opcua.config.safeParse({ endpoint }).success, false, "nodes are required");
});

Deno.test("opcua config refuses SignAndEncrypt without certificate files, and half a pair", () => {
  assert.match(
    issues({ endpoint, nodes, security: { mode: "SignAndEncrypt" } }),
    /SignAndEncrypt needs certificate_file and private_key_file/,
  );
  assert.match(
    issues({ endpoint, nodes, security: { certificate_file: "c.pem" } }),
    /certificate_file and private_key_file go together/,
  );
  assert.equal(
    opcua.config.safeParse({ endpoint, nodes, security: { mode: "Sign" } }).success,
    false,
    "only None and SignAndEncrypt",
  );
});

Deno.test("opcua config refuses a node listed twice and two nodes feeding one metric", () => {
  assert.match(
    issues({ endpoint, nodes: [...nodes, { node_id: "ns=1;s=A", metric: "b" }] }),
    /Node "ns=1;s=A" is listed twice/,
  );
  assert.match(
    issues({ endpoint, nodes: [...nodes, { node_id: "ns=1;s=B", metric: "a" }] }),
    /both feed device "this device" metric "a"/,
  );
  assert.ok(
    opcua.config.safeParse({
      endpoint,
      nodes: [...nodes, { node_id: "ns=1;s=B", metric: "a", device: "other" }],
    }).success,
  );
});

Deno.test("opcua config takes deadbands device-wide and per node; percent is at most 100", () => {
  const parsed = opcua.config.parse({
    endpoint,
    deadband: { type: "percent", value: 2 },
    nodes: [{
      ...nodes[0],
      deadband: { type: "absolute", value: 0.5 },
      sampling_interval: "250ms",
    }],
  });
  assert.deepEqual(parsed.nodes[0]!.deadband, { type: "absolute", value: 0.5 });
  assert.equal(parsed.nodes[0]!.sampling_interval, 250);
  assert.match(
    issues({ endpoint, nodes, deadband: { type: "percent", value: 150 } }),
    /A percent deadband is at most 100/,
  );
});

Deno.test("a missing certificate file is named when the device is created", async () => {
  const config = opcua.config.parse({
    endpoint,
    nodes,
    security: { mode: "SignAndEncrypt", certificate_file: "nope.pem", private_key_file: "k.pem" },
  });
  await assert.rejects(
    async () => await opcua.create(config, testContext({ baseDir: "/nonexistent" })),
    /Cannot read the OPC UA certificate "nope\.pem"/,
  );
});

Deno.test({
  name: "the application URI comes from the certificate's subjectAltName",
  ignore: await needs("openssl"),
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=t",
        "-keyout",
        `${dir}/k.pem`,
        "-out",
        `${dir}/c.pem`,
        "-addext",
        "subjectAltName=DNS:host,URI:urn:example:hub",
      ], // deno-fmt-ignore
      env: { OPENSSL_CONF: "/dev/null" },
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    assert.equal(certificateUri(await Deno.readTextFile(`${dir}/c.pem`)), "urn:example:hub");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

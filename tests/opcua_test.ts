/**
 * The `opcua` device against a real node-opcua server started by each test
 * in its own process: values with their source timestamps, a bad status,
 * a server killed and started again, and SignAndEncrypt with certificates.
 *
 * @module
 */
import assert from "node:assert/strict";
import { HAVE_OPCUA, type OpcuaServer, startOpcuaServer } from "./_fixtures/opcua.ts";
import { recordings } from "./_fixtures/plugins.ts";
import { createRuntime, waitFor } from "./_fixtures/runtime.ts";
import { freePort, needs, run } from "./_fixtures/tools.ts";
import { collect, runTask, spawnTask } from "./_fixtures/cli.ts";

const test = (name: string, fn: () => Promise<void>, ignore = !HAVE_OPCUA) =>
  Deno.test({ name, ignore, fn, sanitizeOps: false, sanitizeResources: false });

/** The server's `Plant.Temp` source timestamps: 2020-01-01 plus the value in seconds. */
const T0 = Date.UTC(2020, 0, 1);

function yaml(key: string, endpoint: string, pki: string, extra = "") {
  return `
admin: { enabled: false }
devices:
  plant:
    type: opcua
    config:
      endpoint: "${endpoint}"
      pki_dir: "${pki}"
      publishing_interval: 50ms
      sampling_interval: 0
      connect_timeout: 2s
      keepalive: 500ms
${extra}
      nodes:
        - { node_id: "ns=1;s=Plant.Temp", metric: temp, unit: C }
        - { node_id: "ns=1;s=Plant.Running", device: line_1, metric: running }
        - { node_id: "ns=1;s=Plant.Broken", metric: broken }
brokers: { mem: { type: memory } }
handlers: { rec: { type: record, config: { key: ${key} } } }
pipelines:
  main:
    from: [plant]
    via: mem
    handlers: [rec]
    batch: { max_samples: 100, max_wait: 5ms }
`;
}

const samplesOf = (key: string, metric: string) =>
  (recordings.get(key)?.samples ?? []).filter((s) => s.metric === metric);

async function withServer(
  fn: (server: OpcuaServer, pki: string) => Promise<void>,
  options: Parameters<typeof startOpcuaServer>[0] = {},
) {
  const pki = await Deno.makeTempDir({ prefix: "opcua-client-pki-" });
  const server = await startOpcuaServer(options);
  try {
    await fn(server, pki);
  } finally {
    await server.kill();
    await Deno.remove(pki, { recursive: true }).catch(() => {});
  }
}

test("opcua: subscribed values arrive with their source timestamps and the node's device and unit; an unknown node is a read error", async () => {
  await withServer(async (server, pki) => {
    const key = `opcua-values-${crypto.randomUUID()}`;
    const { runtime } = await createRuntime(
      yaml(key, server.endpoint, pki).replace(
        "      nodes:\n",
        '      nodes:\n        - { node_id: "ns=1;s=Plant.Nope", metric: nope }\n',
      ),
    );
    try {
      runtime.start();
      await waitFor(() => samplesOf(key, "temp").length >= 3, "three temp samples", 30_000);
      for (const s of samplesOf(key, "temp").slice(-3)) {
        assert.equal(s.device, "plant");
        assert.equal(s.unit, "C");
        assert.equal(s.ts, T0 + s.value * 1000, "the source timestamp, not the arrival time");
        assert.equal(s.quality, undefined);
      }
      await waitFor(() => samplesOf(key, "running").length >= 2, "two running samples");
      const running = samplesOf(key, "running");
      assert.ok(running.every((s) => s.device === "line_1" && (s.value === 0 || s.value === 1)));
      assert.equal(runtime.devices()[0]!.state, "up");
      // A node the server does not know is a read error; the others go on.
      assert.ok(runtime.devices()[0]!.read_errors >= 1);
      assert.match(
        runtime.devices()[0]!.last_error ?? "",
        /Cannot monitor node "ns=1;s=Plant\.Nope": BadNodeIdUnknown/,
      );
    } finally {
      await runtime.stop();
    }
  });
});

test("opcua: a Bad status becomes quality bad with the status name", async () => {
  await withServer(async (server, pki) => {
    const key = `opcua-bad-${crypto.randomUUID()}`;
    const { runtime } = await createRuntime(yaml(key, server.endpoint, pki));
    try {
      runtime.start();
      await waitFor(() => samplesOf(key, "broken").length >= 2, "two broken samples", 30_000);
      for (const s of samplesOf(key, "broken")) {
        assert.equal(s.quality, "bad");
        assert.deepEqual(s.tags, { opcua_status: "BadSensorFailure" });
      }
      assert.ok(samplesOf(key, "temp").every((s) => s.quality === undefined));
    } finally {
      await runtime.stop();
    }
  });
});

test("opcua: a server killed and started again takes the device down, then up, and values flow again", async () => {
  const pki = await Deno.makeTempDir({ prefix: "opcua-client-pki-" });
  let server = await startOpcuaServer();
  const key = `opcua-restart-${crypto.randomUUID()}`;
  const { runtime } = await createRuntime(yaml(key, server.endpoint, pki));
  try {
    runtime.start();
    await waitFor(() => samplesOf(key, "temp").length >= 2, "values before the restart", 30_000);
    await server.kill("SIGKILL");
    await waitFor(() => runtime.devices()[0]!.state === "down", "the device down", 15_000);
    assert.match(runtime.devices()[0]!.last_error ?? "", /OPC UA/);
    const before = samplesOf(key, "temp").length;
    server = await server.restart();
    await waitFor(() => runtime.devices()[0]!.state === "up", "the device up again", 30_000);
    // The restarted server counts from 1 again: new values, with their source timestamps.
    await waitFor(() => samplesOf(key, "temp").length >= before + 3, "values after", 30_000);
    const after = samplesOf(key, "temp").slice(before);
    assert.ok(after.every((s) => s.ts === T0 + s.value * 1000));
  } finally {
    await runtime.stop();
    await server.kill();
    await Deno.remove(pki, { recursive: true }).catch(() => {});
  }
});

test("opcua: a server that hangs (SIGSTOP) takes the device down after 3 silent keep-alives, and back up", async () => {
  await withServer(async (server, pki) => {
    const key = `opcua-hang-${crypto.randomUUID()}`;
    const { runtime } = await createRuntime(yaml(key, server.endpoint, pki));
    try {
      runtime.start();
      await waitFor(() => samplesOf(key, "temp").length >= 2, "values before the hang", 30_000);
      Deno.kill(server.pid, "SIGSTOP");
      try {
        // The connection stays open: only the silence tells.
        await waitFor(() => runtime.devices()[0]!.state === "down", "the device down", 15_000);
        assert.match(runtime.devices()[0]!.last_error ?? "", /sent nothing for 1500 ms/);
      } finally {
        Deno.kill(server.pid, "SIGCONT");
      }
      const before = samplesOf(key, "temp").length;
      await waitFor(() => samplesOf(key, "temp").length >= before + 2, "values again", 30_000);
      assert.equal(runtime.devices()[0]!.state, "up");
    } finally {
      await runtime.stop();
    }
  });
});

const NO_OPENSSL = !HAVE_OPCUA || await needs("openssl");

test("opcua: SignAndEncrypt with Basic256Sha256 and certificate files", async () => {
  const opensslConf = Deno.env.get("OPENSSL_CONF");
  const dir = await Deno.makeTempDir({ prefix: "opcua-secure-" });
  const serverPki = `${dir}/server-pki`;
  const clientPki = `${dir}/client-pki`;
  // The client's certificate, with its application URI in subjectAltName as OPC UA wants.
  const made = await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-sha256",
    "-days",
    "2",
    "-keyout",
    `${dir}/client_key.pem`,
    "-out",
    `${dir}/client_cert.pem`,
    "-subj",
    "/CN=TelemetryHub test client",
    "-addext",
    "subjectAltName=URI:urn:telemetryhub:test-client,DNS:localhost",
    "-addext",
    "keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment",
    "-addext",
    "extendedKeyUsage=clientAuth,serverAuth",
  ]); // deno-fmt-ignore
  assert.equal(made.code, 0, made.output);
  const server = await startOpcuaServer({ pki: serverPki });
  const key = `opcua-secure-${crypto.randomUUID()}`;
  const { runtime } = await createRuntime(yaml(
    key,
    server.endpoint,
    clientPki,
    `      security:
        mode: SignAndEncrypt
        certificate_file: "${dir}/client_cert.pem"
        private_key_file: "${dir}/client_key.pem"
        server_certificate_file: "${serverPki}/own/certs/certificate.pem"`,
  ));
  try {
    runtime.start();
    await waitFor(() => samplesOf(key, "temp").length >= 2, "values over SignAndEncrypt", 30_000)
      .catch((error) => {
        throw new Error(
          `${error.message}: ${JSON.stringify(runtime.devices()[0])}\nserver: ${server.log()}`,
        );
      });
    assert.equal(runtime.devices()[0]!.state, "up");
    // node-opcua-crypto leaves OPENSSL_CONF="undefined" after reading the key; the device undoes it.
    assert.equal(
      Deno.env.get("OPENSSL_CONF"),
      opensslConf,
      "openssl in later child processes works",
    );
    await runtime.stop();

    // Trusting another certificate than the server's: refused, never up, no values.
    const wrongKey = `opcua-wrong-${crypto.randomUUID()}`;
    const wrong = await createRuntime(yaml(
      wrongKey,
      server.endpoint,
      `${dir}/client-pki-2`,
      `      security:
        mode: SignAndEncrypt
        certificate_file: "${dir}/client_cert.pem"
        private_key_file: "${dir}/client_key.pem"
        server_certificate_file: "${dir}/client_cert.pem"`,
    ));
    try {
      wrong.runtime.start();
      await waitFor(() => wrong.runtime.devices()[0]!.restarts >= 1, "a refused attempt", 30_000);
      assert.match(wrong.runtime.devices()[0]!.last_error ?? "", /BadCertificateUntrusted/);
      assert.notEqual(wrong.runtime.devices()[0]!.state, "up");
      assert.equal(samplesOf(wrongKey, "temp").length, 0);
    } finally {
      await wrong.runtime.stop();
    }
  } finally {
    await runtime.stop();
    await server.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}, NO_OPENSSL);

test("opcua: `deno task run` with its own permissions reads an OPC UA server", async () => {
  await withServer(async (server) => {
    const dir = await Deno.makeTempDir({ prefix: "opcua-run-" });
    const port = freePort();
    try {
      const config = `${dir}/telemetry.yaml`;
      // pki_dir in ./data: the only place `deno task run` may write.
      await Deno.writeTextFile(
        config,
        `admin: { listen: "127.0.0.1:${port}" }
devices:
  plant:
    type: opcua
    config:
      endpoint: "${server.endpoint}"
      publishing_interval: 50ms
      sampling_interval: 0
      nodes: [{ node_id: "ns=1;s=Plant.Temp", metric: temp }]
brokers: { mem: { type: memory } }
handlers: { drop: { type: discard } }
pipelines: { main: { from: [plant], via: mem, handlers: [drop] } }
`,
      );
      const child = await spawnTask("run", ["--config", config]);
      const stdout = collect(child.stdout);
      const stderr = collect(child.stderr);
      try {
        // Until the first samples arrive, however long the client's first certificate takes.
        await waitFor(
          async () => {
            const text = await fetch(`http://127.0.0.1:${port}/metrics`)
              .then((r) => r.text())
              .catch(() => "");
            return /^telemetry_samples_ingested_total\{[^}]*\} [1-9]/m.test(text);
          },
          "samples from the OPC UA server",
          60_000,
        );
      } finally {
        child.kill("SIGTERM");
      }
      const { code } = await child.status;
      const [out, err] = [await stdout.done, await stderr.done];
      assert.equal(code, 0, err);
      const read = Number(/Stopped after [\d.]+s: (\d+) samples read/.exec(out)?.[1]);
      assert.ok(read > 0, `samples read: ${out}\n${err}`);
      assert.doesNotMatch(err, /NotCapable|Requires .* access/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

test("opcua: `deno task opcua-browse` prints the server's variables as node-table lines", async () => {
  await withServer(async (server) => {
    const out = await runTask("opcua-browse", [server.endpoint]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^nodes:$/m);
    assert.match(
      out.stdout,
      /^ {2}- \{ node_id: "ns=1;s=Plant\.Temp", metric: plant_temp \} {2}# Double, Plant\/Temp$/m,
    );
    assert.match(
      out.stdout,
      /node_id: "ns=1;s=Plant\.Running", metric: plant_running \} {2}# Boolean/,
    );
    const refused = await runTask("opcua-browse", ["http://x"]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /Usage: deno task opcua-browse/);
  });
});

test("opcua: a full blocking hub queue pauses the server's publishing, and it resumes", async () => {
  await withServer(async (server, pki) => {
    const key = `opcua-pressure-${crypto.randomUUID()}`;
    const nodes = Array.from(
      { length: 50 },
      (_, i) => `        - { node_id: "ns=1;s=Bench.V${i}", metric: v${i} }`,
    ).join("\n");
    const { runtime, lines } = await createRuntime(
      yaml(key, server.endpoint, pki)
        .replace(/ {6}nodes:\n( {8}- .*\n)+/, `      nodes:\n${nodes}\n`)
        .replace(`config: { key: ${key} }`, `config: { key: ${key}, delay: 20ms }`)
        .replace(
          "batch: { max_samples: 100, max_wait: 5ms }",
          "batch: { max_samples: 5, max_wait: 5ms }\n    hub_queue: { capacity: 10, overflow: block }",
        ),
    );
    try {
      runtime.start();
      const paused = () => lines.filter((l) => l.msg === "Hub queue full: publishing paused");
      const resumed = () => lines.filter((l) => l.msg === "Publishing resumed");
      await waitFor(() => paused().length >= 1 && resumed().length >= 1, "a pause and a resume");
      const seen = recordings.get(key)?.samples.length ?? 0;
      await waitFor(() => (recordings.get(key)?.samples.length ?? 0) > seen + 20, "more values");
      assert.equal(runtime.metrics.grandTotals().samples_dropped, 0, "the hub drops nothing");
    } finally {
      await runtime.stop();
    }
  }, { bench: 50, every: 20 });
});

/**
 * MQTT for tests: the machine's Mosquitto on 127.0.0.1:1883 (required
 * under `CI=true`), a publishing client, and a private `mosquitto` on a free
 * port that a test may stop and start by its pid.
 *
 * @module
 */
import { requireService } from "./services.ts";
import mqtt, { type MqttClient } from "mqtt";
import { freePort, spawnListening } from "./tools.ts";

/** URL of the shared broker (override with `MQTT_URL`). */
export const MQTT_URL = Deno.env.get("MQTT_URL") ?? "mqtt://127.0.0.1:1883";

/** A connected client (publisher), or an error after 3 s. */
export async function mqttClient(url = MQTT_URL, clientId?: string): Promise<MqttClient> {
  return await mqtt.connectAsync(url, {
    connectTimeout: 3000,
    reconnectPeriod: 0,
    ...(clientId ? { clientId } : {}),
  });
}

/** Resolved once per file: tests use `ignore: !HAVE_MQTT`. */
export const HAVE_MQTT = await requireService(`an MQTT broker at "${MQTT_URL}"`, async () => {
  const client = await mqttClient();
  await client.endAsync();
});

/** A topic prefix unique to one test. */
export function randomTopic(name = "t"): string {
  return `th_test/${name}_${crypto.randomUUID().slice(0, 8)}`;
}

/** A private Mosquitto on a free port (no persistence), stopped and started by pid. */
export interface PrivateBroker {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Spawns `/usr/sbin/mosquitto` with `args`; resolves once `port` takes connections. */
function spawnMosquitto(args: string[], port: number): Promise<Deno.ChildProcess> {
  return spawnListening("/usr/sbin/mosquitto", args, port);
}

/** Starts `mosquitto -p <free port>`; the caller must `stop()` it. */
export async function startPrivateBroker(): Promise<PrivateBroker> {
  const port = freePort();
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    child = await spawnMosquitto(["-p", String(port)], port);
  };
  await start();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      if (!child) return;
      child.kill("SIGTERM");
      await child.status;
      child = undefined;
    },
    start,
  };
}

/** PEM files of a test CA, a broker certificate for 127.0.0.1 and a client certificate. */
export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** Makes a throwaway CA and certificates with `openssl` in a temporary directory. */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "th_pki_" });
  const openssl = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  await openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=th-test-ca",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  );
  for (const [name, cn] of [["server", "127.0.0.1"], ["client", "th-test-client"]]) {
    await openssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=${cn}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
    );
    await Deno.writeTextFile(
      `${dir}/${name}.ext`,
      name === "server" ? "subjectAltName=IP:127.0.0.1\n" : "",
    );
    await openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.pem`,
    );
  }
  // mosquitto started as root reads its files as the user "mosquitto": throwaway keys, readable.
  await Deno.chmod(dir, 0o755);
  for await (const entry of Deno.readDir(dir)) await Deno.chmod(`${dir}/${entry.name}`, 0o644);
  return {
    dir,
    ca: `${dir}/ca.pem`,
    serverCert: `${dir}/server.pem`,
    serverKey: `${dir}/server.key`,
    clientCert: `${dir}/client.pem`,
    clientKey: `${dir}/client.key`,
  };
}

/** A private Mosquitto with a TLS listener that wants a client certificate signed by the CA. */
export async function startTlsBroker(
  pki: TestPki,
): Promise<{ url: string; stop(): Promise<void> }> {
  const port = freePort();
  const conf = `${pki.dir}/mosquitto.conf`;
  await Deno.writeTextFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      `cafile ${pki.ca}`,
      `certfile ${pki.serverCert}`,
      `keyfile ${pki.serverKey}`,
      "require_certificate true",
      "",
    ].join("\n"),
  );
  const child = await spawnMosquitto(["-c", conf], port);
  return {
    url: `mqtts://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

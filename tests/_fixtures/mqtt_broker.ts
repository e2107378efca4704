/**
 * MQTT for tests: the machine's Mosquitto on 127.0.0.1:1883 (required
 * under `CI=true`), a publishing client, and a private `mosquitto` on a free
 * port that a test may stop and start by its pid.
 *
 * @module
 */
import mqtt, { type MqttClient } from "mqtt";

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

async function mqttAvailable(): Promise<boolean> {
  try {
    const client = await mqttClient();
    await client.endAsync();
    return true;
  } catch (error) {
    if (Deno.env.get("CI") === "true") {
      throw new Error(`An MQTT broker is required under CI but "${MQTT_URL}" does not answer`, {
        cause: error,
      });
    }
    console.warn(`Skipping MQTT tests: ${String(error)}`);
    return false;
  }
}

/** Resolved once per file: tests use `ignore: !HAVE_MQTT`. */
export const HAVE_MQTT = await mqttAvailable();

/** A topic prefix unique to one test. */
export function randomTopic(name = "t"): string {
  return `th_test/${name}_${crypto.randomUUID().slice(0, 8)}`;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A private Mosquitto on a free port (no persistence), stopped and started by pid. */
export interface PrivateBroker {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Starts `mosquitto -p <free port>`; the caller must `stop()` it. */
export async function startPrivateBroker(): Promise<PrivateBroker> {
  const port = freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    child = new Deno.Command("/usr/sbin/mosquitto", {
      args: ["-p", String(port)],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const end = Date.now() + 5000;
    for (;;) {
      try {
        await (await mqttClient(url)).endAsync();
        return;
      } catch (error) {
        if (Date.now() > end) {
          throw new Error(`mosquitto did not start on ${port}`, { cause: error });
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  await start();
  return {
    url,
    async stop() {
      if (!child) return;
      child.kill("SIGTERM");
      await child.status;
      child = undefined;
    },
    start,
  };
}

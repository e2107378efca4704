/**
 * The `mqtt` device: subscribes to topics on an MQTT broker (Mosquitto,
 * EMQX, HiveMQ…) and decodes each message as JSON or with a named-group
 * regular expression, through npm `mqtt`.
 *
 * At least once from the broker to the hub queue: with QoS 1 or 2 a
 * message is acknowledged only after its samples are in the hub queue
 * (`handleMessage`), so a full queue with `overflow: block` holds the
 * broker back, and a process that dies first gets the message again from
 * its persistent session (`clean_session: false`, a fixed `client_id`).
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import type { MqttClient } from "mqtt";
import {
  defineDevice,
  type DeviceIO,
  duration,
  errorMessage,
  redactText,
  untilAborted,
  z,
} from "../../core/mod.ts";
import {
  type Conversions,
  conversions,
  jsonDecoder,
  type LineDecoder,
  pattern,
  regexDecoder,
} from "../_decode/mod.ts";

/** Decoders cached per device name when devices come from the topic. */
const MAX_DECODERS = 10_000;

const decodeSchema = z.discriminatedUnion("mode", [
  z.strictObject({
    mode: z.literal("json").describe(
      "Each message is JSON: a sample object `{metric, value, unit?, ts?}`, an array of them, " +
        "or a flat object of metric → number",
    ),
    ...conversions,
  }),
  z.strictObject({
    mode: z.literal("regex").describe("Each message's text is matched by `pattern`"),
    pattern: pattern(),
    ...conversions,
  }),
]).prefault({ mode: "json" }).describe("How messages become samples: `json` or `regex`");

/** The config schema of the `mqtt` device. */
export const configSchema = z.strictObject({
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\/[^\s]+$/, {
    error: 'Expected a broker URL such as "mqtt://127.0.0.1:1883" (mqtt, mqtts, ws, wss)',
  }).default("mqtt://127.0.0.1:1883").describe(
    "Broker URL; usually ${MQTT_URL:-mqtt://127.0.0.1:1883}",
  ),
  topics: z.array(z.string().min(1)).min(1).describe(
    'Topic filters to subscribe to, with + and # wildcards, e.g. ["factory/+/telemetry"]',
  ),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1).describe(
    "Subscription QoS: 0 may lose messages; 1 and 2 acknowledge only once samples are queued",
  ),
  client_id: z.string().min(1).optional().describe(
    "MQTT client id; default telemetryhub-<device name>-<hash of topics and qos>, stable " +
      "across restarts so the persistent session is found again",
  ),
  clean_session: z.boolean().default(false).describe(
    "Start without the broker's stored session; false keeps QoS 1/2 messages sent while this " +
      "process was away",
  ),
  username: z.string().optional().describe("User name, if the broker wants one"),
  password: z.string().optional().describe("Password; use ${MQTT_PASSWORD}"),
  tls: z.strictObject({
    ca_file: z.string().min(1).optional().describe(
      "PEM file of the CA that signed the broker's certificate (default: the system's CAs)",
    ),
    cert_file: z.string().min(1).optional().describe(
      "PEM client certificate, for brokers that want one (with key_file)",
    ),
    key_file: z.string().min(1).optional().describe("PEM private key of cert_file"),
    server_name: z.string().min(1).optional().describe(
      "Name to check the broker's certificate against, when it differs from the URL's host",
    ),
  }).refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), {
    error: "cert_file and key_file go together",
  }).optional().describe(
    "TLS settings for mqtts:// and wss:// URLs; files are relative to the configuration file",
  ),
  device_from_topic: z.int().min(0).optional().describe(
    "Take each sample's device from this topic level (0 is the first), e.g. 1 for " +
      "factory/<device>/telemetry; default: this device's name",
  ),
  connect_timeout: duration({ timer: true }).prefault("5s").describe(
    "Longest wait for the broker to answer",
  ),
  reconnect_period: duration({ timer: true }).pipe(z.number().min(100)).prefault("1s").describe(
    "Pause between reconnection attempts while the broker is away",
  ),
  decode: decodeSchema,
});

/** A validated `mqtt` config. */
export type MqttConfig = z.output<typeof configSchema>;

/** mqtt.js TLS options from the `tls` block: file contents, read once at creation. */
async function readTls(
  tls: MqttConfig["tls"],
  baseDir: string,
): Promise<{ ca?: string; cert?: string; key?: string; servername?: string }> {
  if (!tls) return {};
  const read = async (file: string, what: string) => {
    try {
      return await Deno.readTextFile(isAbsolute(file) ? file : join(baseDir, file));
    } catch (error) {
      throw new Error(`Cannot read the TLS ${what} "${file}": ${errorMessage(error)}`);
    }
  };
  const out: { ca?: string; cert?: string; key?: string; servername?: string } = {};
  if (tls.ca_file) out.ca = await read(tls.ca_file, "CA file");
  if (tls.cert_file) out.cert = await read(tls.cert_file, "certificate");
  if (tls.key_file) out.key = await read(tls.key_file, "key");
  if (tls.server_name) out.servername = tls.server_name;
  return out;
}

/**
 * `telemetryhub-<device>-<hash of the topics and QoS>`: stable across
 * restarts, so the persistent session is found again, and new when the
 * subscriptions change, so a session never carries topics no longer listed.
 */
export async function defaultClientId(device: string, config: Pick<MqttConfig, "topics" | "qos">) {
  const text = JSON.stringify([[...config.topics].sort(), config.qos]);
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  const hash = Array.from(digest.slice(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
  return `telemetryhub-${device}-${hash}`;
}

export default defineDevice({
  name: "mqtt",
  summary: "MQTT subscriptions: JSON or regex messages, device from the topic, QoS 1 at least once",
  version: "0.1.0",
  description: "Subscribes to topic filters on an MQTT broker and turns each message into " +
    "samples. With QoS 1 or 2 a message is acknowledged only once its samples are queued.",
  config: configSchema,
  async create(config, ctx) {
    const conv: Conversions = config.decode;
    const decoders = new Map<string, LineDecoder>();
    const decoderFor = (device: string): LineDecoder => {
      let decoder = decoders.get(device);
      if (!decoder) {
        if (decoders.size >= MAX_DECODERS) decoders.clear();
        decoder = config.decode.mode === "json"
          ? jsonDecoder(device, conv)
          : regexDecoder(device, config.decode.pattern, conv);
        decoders.set(device, decoder);
      }
      return decoder;
    };
    const deviceOf = (topic: string): string => {
      if (config.device_from_topic === undefined) return ctx.name;
      const level = topic.split("/")[config.device_from_topic];
      if (!level) {
        throw new Error(
          `Topic "${topic}" has no level ${config.device_from_topic} to name a device`,
        );
      }
      return level;
    };
    const where = redactText(config.url);
    let client: MqttClient | undefined;
    const tls = await readTls(config.tls, ctx.baseDir);

    return {
      async run(io: DeviceIO): Promise<void> {
        const { default: mqtt } = await import("mqtt");
        const c = client = mqtt.connect(config.url, {
          clientId: config.client_id ?? await defaultClientId(ctx.name, config),
          clean: config.clean_session,
          connectTimeout: config.connect_timeout,
          reconnectPeriod: config.reconnect_period,
          ...tls,
          ...(config.username === undefined ? {} : { username: config.username }),
          ...(config.password === undefined ? {} : { password: config.password }),
        });
        // Samples first, acknowledgement after: mqtt.js sends PUBACK once this calls back.
        c.handleMessage = (packet, done) => {
          const text = typeof packet.payload === "string"
            ? packet.payload
            : new TextDecoder().decode(packet.payload);
          let samples;
          try {
            // No read time: the edge stamps samples without their own ts (time and a unique
            // seq), so messages arriving in the same millisecond stay distinct.
            samples = decoderFor(deviceOf(packet.topic))(text);
          } catch (error) {
            // A message that never decodes is acknowledged, or the broker would resend it forever.
            io.readError(new Error(`Message on "${packet.topic}": ${errorMessage(error)}`));
            return done();
          }
          let queued;
          try {
            // QoS 1 and 2: acknowledged once the broker holds the samples (durable broker).
            queued = samples.length > 0 ? io.emit(samples, { durable: packet.qos > 0 }) : undefined;
          } catch (error) {
            // Not queued (the pipeline is stopping): no acknowledgement, so the broker keeps it.
            return done(error as Error);
          }
          if (queued) queued.then(() => done(), (error) => done(error));
          else done();
        };
        c.on("connect", () => {
          // Also with a session present: subscribing again is harmless and certain.
          c.subscribe(config.topics, { qos: config.qos }, (error, granted) => {
            if (error) {
              return io.down(new Error(`Cannot subscribe at "${where}": ${error.message}`));
            }
            // Up once subscribed (SUBACK), not at CONNACK: from now on messages arrive.
            io.up();
            const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
            if (refused.length > 0) {
              io.readError(new Error(`The broker refused topics ${JSON.stringify(refused)}`));
            }
          });
        });
        c.on("offline", () => io.down(new Error(`MQTT broker at "${where}" is unreachable`)));
        c.on("error", (error) => io.down(new Error(`MQTT at "${where}": ${error.message}`)));
        await untilAborted(io.signal);
        // A clean disconnect when connected; without a broker there is nothing to wait for.
        await c.endAsync(!c.connected);
      },
      async close() {
        await client?.endAsync(true).catch(() => {});
      },
    };
  },
});

/**
 * The `mqtt` sink of the alert handler: publishes each notice as JSON to a
 * topic made from a template, retained by default, so an HMI or SCADA
 * screen subscribing to `alerts/#` sees every condition's latest state at
 * once.
 *
 * @module
 */
import type { MqttClient } from "mqtt";
import { errorMessage, type Logger } from "../../core/mod.ts";
import type { DeliveryReport, Notice, Sink } from "./_sinks.ts";

/** Settings of an MQTT sink. */
export interface MqttSinkOptions {
  url: string;
  /** With `{device}`, `{metric}`, `{rule}`, `{severity}` and `{status}` placeholders. */
  topic: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  username?: string | undefined;
  password?: string | undefined;
  queue_size: number;
}

/** Placeholders of a topic template. */
const PLACEHOLDER = /\{(device|metric|rule|severity|status)\}/g;

/** The topic of a notice; MQTT wildcards and separators in values become `_`. */
export function topicOf(template: string, notice: Notice): string {
  return template.replace(
    PLACEHOLDER,
    (_, key: keyof Notice) =>
      String(notice[key] ?? "").replace(/[+#/]/g, "_").replaceAll("\u0000", "_"),
  );
}

/** Publishes notices; mqtt.js keeps QoS 1/2 publishes while the broker is away. */
export class MqttSink implements Sink {
  readonly name: string;
  #client: MqttClient;
  #options: MqttSinkOptions;
  #logger: Logger;
  #report: DeliveryReport;
  #now: () => number;
  #pending = new Set<Promise<void>>();

  constructor(
    client: MqttClient,
    options: MqttSinkOptions,
    deps: { logger: Logger; report: DeliveryReport; now: () => number },
  ) {
    this.#client = client;
    this.#options = options;
    this.#logger = deps.logger;
    this.#report = deps.report;
    this.#now = deps.now;
    this.name = mqttSinkName(options.url);
  }

  deliver(notice: Notice): void {
    if (this.#pending.size >= this.#options.queue_size) {
      this.#report(notice, "dropped", 0);
      return;
    }
    const at = this.#now();
    const topic = topicOf(this.#options.topic, notice);
    const sent = this.#client
      .publishAsync(topic, JSON.stringify(notice), {
        qos: this.#options.qos,
        retain: this.#options.retain,
      })
      .then(
        () => this.#report(notice, "sent", (this.#now() - at) / 1000),
        (error) => {
          this.#report(notice, "failed", 0);
          this.#logger.error(`Cannot publish an alert to "${topic}": ${errorMessage(error)}`);
        },
      )
      .finally(() => this.#pending.delete(sent));
    this.#pending.add(sent);
  }

  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }

  async close(): Promise<void> {
    await this.#client.endAsync(true).catch(() => {});
  }
}

/** How an MQTT sink is named in logs and metrics (no credentials). */
export function mqttSinkName(url: string): string {
  return `mqtt ${url.replace(/\/\/[^@/]*@/, "//")}`;
}

/** Connects the sink's client (in the background: publishes wait for the connection). */
export async function connectMqttSink(
  options: MqttSinkOptions,
  deps: { logger: Logger; report: DeliveryReport; now: () => number; clientId: string },
): Promise<MqttSink> {
  const { default: mqtt } = await import("mqtt");
  const client = mqtt.connect(options.url, {
    clientId: deps.clientId,
    reconnectPeriod: 1000,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
  });
  let down = false;
  client.on("error", (error) => {
    if (!down) deps.logger.warn(`Alert sink ${mqttSinkName(options.url)}: ${error.message}`);
    down = true;
  });
  client.on("connect", () => down = false);
  return new MqttSink(client, options, deps);
}

/**
 * Test plugins for the configuration golden cases, so the cases do not
 * depend on the real plugins. Only their config schemas matter: `create()`
 * is never called.
 *
 * @module
 */
import { type AnyPluginDefinition, definePlugin, duration, z } from "../../core/mod.ts";
import { PluginRegistry } from "../../core/registry.ts";

function notRunnable(): never {
  throw new Error("Configuration test fixture: not runnable");
}

/** A fake simulated device. */
export const simulated = definePlugin({
  name: "simulated",
  kind: "device",
  summary: "Generates fake readings",
  config: z.strictObject({
    rate: z.int().min(1).default(1).describe("Readings per second"),
    seed: z.int().default(1).describe("Seed of the random generator"),
    metrics: z.array(z.enum(["temperature", "pressure", "humidity"])).default(["temperature"])
      .describe("Metrics to generate"),
  }),
  create: notRunnable,
});

/** A fake serial device. */
export const serial = definePlugin({
  name: "serial",
  kind: "device",
  summary: "Reads lines from a serial port",
  config: z.strictObject({
    port: z.string().min(1).describe("Device path, e.g. /dev/ttyUSB0"),
    baud: z.int().default(9600).describe("Baud rate"),
  }),
  create: notRunnable,
});

/** A fake in-process broker. */
export const memory = definePlugin({
  name: "memory",
  kind: "broker",
  summary: "In-process queue",
  config: z.strictObject({}),
  shared: false,
  create: notRunnable,
});

/** A fake Redis broker, for URL password redaction. */
export const redis = definePlugin({
  name: "redis",
  kind: "broker",
  summary: "Redis lists",
  shared: true,
  config: z.strictObject({
    url: z.string().default("redis://127.0.0.1:6379").describe("Redis URL"),
    key_prefix: z.string().default("telemetry").describe("Prefix of every key"),
  }),
  create: notRunnable,
});

/** A fake handler with a duration field. */
export const digest = definePlugin({
  name: "digest",
  kind: "handler",
  summary: "Summarizes samples periodically",
  config: z.strictObject({
    interval: duration().prefault("1m").describe("How often a digest is written"),
  }),
  create: notRunnable,
});

/** A fake webhook handler, for secret keys. */
export const webhook = definePlugin({
  name: "webhook",
  kind: "handler",
  summary: "Posts samples to a URL",
  config: z.strictObject({
    url: z.string().describe("Where to post"),
    token: z.string().optional().describe("Bearer token"),
  }),
  create: notRunnable,
});

/** Every fixture plugin. */
export const FIXTURE_PLUGINS: readonly AnyPluginDefinition[] = [
  simulated,
  serial,
  memory,
  redis,
  digest,
  webhook,
];

/** A registry of the fixture plugins, as if they were the built-ins. */
export function fixtureRegistry(): PluginRegistry {
  return PluginRegistry.of(FIXTURE_PLUGINS);
}

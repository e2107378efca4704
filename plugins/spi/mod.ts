/**
 * The `spi` device: polls an SPI part through the Node.js driver host with
 * a transfer frame and a bit-field decoder, or the `mcp3008` ADC preset.
 *
 * @module
 */
import { defineDevice, duration, z } from "../../core/mod.ts";
import { pollingHostDevice, type Reading, requireHostPackages } from "../_driver_host/mod.ts";
import { type BitField, decodeField } from "./_decode.ts";
import { mcp3008Code, mcp3008Frame, mcp3008Volts } from "./_mcp3008.ts";

export { type BitField, decodeField, readBits } from "./_decode.ts";
export { mcp3008Code, mcp3008Frame, mcp3008Volts } from "./_mcp3008.ts";

const byte = () => z.int().min(0).max(255);
const conversion = {
  scale: z.number().default(1).describe("Factor applied to the value"),
  offset: z.number().default(0).describe(
    "Added after scaling: `value × scale + offset`",
  ),
};

const fieldSchema = z.strictObject({
  bit_offset: z.int().min(0).describe(
    "First bit of the value in the reply, counted from the most significant bit of byte 0",
  ),
  bit_length: z.int().min(1).max(48).describe(
    "Number of bits of the value (1–48)",
  ),
  signed: z.boolean().default(false).describe(
    "Two's complement signed integer",
  ),
  ...conversion,
  unit: z.string().optional().describe("Unit of the samples"),
});

const channelSchema = z.strictObject({
  channel: z.int().min(0).max(7).describe("ADC input, 0–7"),
  differential: z.boolean().default(false).describe(
    "Pseudo-differential read of a channel pair instead of single-ended",
  ),
  ...conversion,
  unit: z.string().default("V").describe(
    "Unit after scaling (volts unless scaled)",
  ),
});

/** The config schema of the `spi` device. */
export const configSchema = z.strictObject({
  bus: z.int().min(0).max(255).describe("SPI bus number: 0 for /dev/spidev0.x"),
  device: z.int().min(0).max(255).default(0).describe(
    "Chip select: 1 for /dev/spidev<bus>.1",
  ),
  mode: z.int().min(0).max(3).default(0).describe(
    "SPI mode 0–3 (clock polarity and phase)",
  ),
  max_speed_hz: z.int().positive().default(1_000_000).describe(
    "Clock speed in Hz",
  ),
  interval: duration({ timer: true }).prefault("1s").describe("How often to read"),
  preset: z.enum(["mcp3008"]).optional().describe(
    "`mcp3008`: 8-channel 10-bit ADC; configure `channels` and `vref`",
  ),
  vref: z.number().positive().default(3.3).describe(
    "Reference voltage of the ADC preset, in V",
  ),
  channels: z.record(z.string().min(1), channelSchema).default({}).describe(
    "ADC preset: metric → channel; the value is `code × vref / 1024 × scale + offset`",
  ),
  frame: z.array(byte()).default([]).describe(
    "Bytes sent in each transfer (without a preset)",
  ),
  fields: z.record(z.string().min(1), fieldSchema).default({}).describe(
    "Metric → where its value is in the reply to `frame` (without a preset)",
  ),
  fake_bus: z.strictObject({
    replies: z.record(z.string(), z.array(byte())).default({}).describe(
      'Sent frame in hex (e.g. "01 80 00") → reply bytes',
    ),
    default: z.array(byte()).optional().describe("Reply to any other frame"),
  }).optional().describe(
    "Tests only: a scripted bus instead of the hardware; refused unless the test enabled it",
  ),
}).superRefine((config, ctx) => {
  const issue = (path: string, message: string) =>
    ctx.addIssue({ code: "custom", path: [path], message });
  if (config.preset) {
    if (Object.keys(config.channels).length === 0) {
      issue("channels", "Expected at least one channel");
    }
    if (config.frame.length > 0 || Object.keys(config.fields).length > 0) {
      issue("preset", "Use either a preset or frame/fields, not both");
    }
    return;
  }
  if (config.frame.length === 0) issue("frame", "Expected a preset or a frame");
  if (Object.keys(config.fields).length === 0) {
    issue("fields", "Expected at least one field");
  }
  for (const [metric, f] of Object.entries(config.fields)) {
    if (f.bit_offset + f.bit_length > config.frame.length * 8) {
      issue(
        "fields",
        `Field "${metric}" ends past the ${config.frame.length}-byte frame`,
      );
    }
  }
});

/** A validated `spi` config. */
export type SpiConfig = z.output<typeof configSchema>;

interface Plan {
  frames: number[][];
  decode(replies: readonly number[][]): Reading[];
}

function planOf(config: SpiConfig): Plan {
  if (config.preset === "mcp3008") {
    const channels = Object.entries(config.channels);
    return {
      frames: channels.map(([, c]) => mcp3008Frame(c.channel, c.differential)),
      decode: (replies) =>
        channels.map(([metric, c], i) => ({
          metric,
          value: mcp3008Volts(mcp3008Code(replies[i] ?? []), config.vref) * c.scale +
            c.offset,
          unit: c.unit,
        })),
    };
  }
  const fields: [string, BitField][] = Object.entries(config.fields);
  return {
    frames: [config.frame],
    decode: ([reply]) =>
      fields.map(([metric, f]) => ({
        metric,
        value: decodeField(f, reply ?? []),
        unit: f.unit,
      })),
  };
}

export default defineDevice({
  name: "spi",
  summary: "SPI sensors: transfer frame with bit-field decoding, MCP3008 ADC preset",
  version: "0.1.0",
  description: "Polls an SPI part through the Node.js driver host (`deno task drivers` " +
    "installs it). Readings are stamped in the host right after the transfer.",
  config: configSchema,
  async create(config, ctx) {
    if (!config.fake_bus) await requireHostPackages("spi");
    const plan = planOf(config);
    const open = {
      device: ctx.name,
      kind: "spi" as const,
      bus: config.bus,
      chip_select: config.device,
      mode: config.mode,
      max_speed_hz: config.max_speed_hz,
      ...(config.fake_bus ? { fake: config.fake_bus } : {}),
    };
    return pollingHostDevice(ctx, open, config.interval, (device) => async () => {
      const reply = await device.request("transfer", { frames: plan.frames });
      return { ts: Number(reply.ts), readings: plan.decode(reply.replies as number[][]) };
    });
  },
});

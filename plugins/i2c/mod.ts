/**
 * The `i2c` device: polls an I2C part through the Node.js driver host,
 * with a register map (byte order, signedness, linear conversion, optional
 * write-before-read) or a preset (`tmp102`, `bme280`).
 *
 * @module
 */
import { defineDevice, duration, sleepUnlessAborted, z } from "../../core/mod.ts";
import { pollingHostDevice, requireHostPackages } from "../_driver_host/mod.ts";
import { I2C_PRESETS, type I2cBus, type I2cReader, registerMapReader } from "./_presets.ts";

export { decodeRegister, readInteger, type RegisterSpec } from "./_decode.ts";
export { I2C_PRESETS, TMP102_REGISTERS } from "./_presets.ts";

const byte = () => z.int().min(0).max(255);

const registerSchema = z.strictObject({
  register: byte().describe("First register to read (0–255, e.g. 0x00)"),
  bytes: z.int().min(1).max(4).default(2).describe(
    "How many bytes to read (1–4)",
  ),
  order: z.enum(["big", "little"]).default("big").describe(
    "Byte order: `big` (most significant byte first) or `little`",
  ),
  signed: z.boolean().default(false).describe(
    "Two's complement signed integer",
  ),
  scale: z.number().default(1).describe(
    "Factor from the raw integer to the unit",
  ),
  offset: z.number().default(0).describe(
    "Added after scaling: `value = raw × scale + offset`",
  ),
  unit: z.string().optional().describe("Unit of the samples, e.g. °C"),
});

/** The config schema of the `i2c` device. */
export const configSchema = z.strictObject({
  bus: z.int().min(0).max(255).describe("I2C bus number: 1 for /dev/i2c-1"),
  address: z.int().min(0x03).max(0x77).optional().describe(
    "7-bit device address (0x03–0x77); presets default to the part's usual address",
  ),
  interval: duration({ timer: true }).prefault("1s").describe("How often to read"),
  preset: z.enum(Object.keys(I2C_PRESETS) as ["tmp102", "bme280"]).optional()
    .describe(
      "A ready-made register map: `tmp102` (temperature) or `bme280` (temperature, pressure " +
        "in hPa, humidity, with the part's calibration)",
    ),
  registers: z.record(z.string().min(1), registerSchema).default({}).describe(
    "Register map: metric → how to read and convert it; one sample per metric and read",
  ),
  trigger: z.strictObject({
    register: byte().describe("Register to write"),
    bytes: z.array(byte()).min(1).describe("Bytes to write"),
    delay: duration({ timer: true }).prefault("10ms").describe(
      "Wait between the write and the read",
    ),
  }).optional().describe("Write before each read, to start a conversion"),
  fake_bus: z.strictObject({
    registers: z.record(z.string(), z.array(byte())).describe(
      "Register contents: first register (e.g. `0xF7` or `247`) → bytes from there on",
    ),
  }).optional().describe(
    "Tests only: a scripted bus instead of the hardware; refused unless the test enabled it",
  ),
}).superRefine((config, ctx) => {
  const hasMap = Object.keys(config.registers).length > 0;
  if (config.preset && (hasMap || config.trigger)) {
    ctx.addIssue({
      code: "custom",
      path: ["preset"],
      message: "Use either a preset or registers/trigger, not both",
    });
  }
  if (!config.preset && !hasMap) {
    ctx.addIssue({
      code: "custom",
      path: ["registers"],
      message: "Expected a preset or registers",
    });
  }
  if (!config.preset && config.address === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["address"],
      message: "Expected an address (only presets have a default)",
    });
  }
});

/** A validated `i2c` config. */
export type I2cConfig = z.output<typeof configSchema>;

export default defineDevice({
  name: "i2c",
  summary: "I2C sensors: register maps and presets (TMP102, BME280)",
  version: "0.1.0",
  description: "Polls an I2C part through the Node.js driver host (`deno task drivers` " +
    "installs it). Readings are stamped in the host right after the read.",
  config: configSchema,
  async create(config, ctx) {
    if (!config.fake_bus) await requireHostPackages("i2c");
    const preset = config.preset ? I2C_PRESETS[config.preset] : undefined;
    const address = config.address ?? preset?.address ?? 0;
    const newReader = (): I2cReader =>
      preset ? preset.reader() : registerMapReader(config.registers, config.trigger);
    const open = {
      device: ctx.name,
      kind: "i2c" as const,
      bus: config.bus,
      address,
      ...(config.fake_bus ? { fake: config.fake_bus } : {}),
    };
    return pollingHostDevice(ctx, open, config.interval, async (device, signal) => {
      const bus: I2cBus = {
        read: async (blocks) => {
          const reply = await device.request("read", { blocks });
          return { ts: Number(reply.ts), reads: reply.reads as number[][] };
        },
        write: async (register, bytes) => {
          await device.request("write", { register, bytes });
        },
        sleep: async (ms) => {
          await sleepUnlessAborted(ctx.clock, ms, signal);
        },
      };
      const reader = newReader();
      await reader.init(bus);
      return () => reader.read(bus);
    });
  },
});

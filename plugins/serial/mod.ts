/**
 * The `serial` device: reads a UART (or any tty) through the Node.js driver
 * host and decodes lines with a named-group regular expression, as JSON, or
 * by polling with a command and decoding the reply.
 *
 * @module
 */
import { defineDevice, type DeviceIO, duration, type SampleInput, z } from "../../core/mod.ts";
import {
  hostDevice,
  type HostEvent,
  pollUntilClosed,
  requireHostPackages,
  sequencer,
  untilClosedOrAborted,
} from "../_driver_host/mod.ts";
import {
  type Conversions,
  conversions,
  jsonDecoder,
  pattern,
  regexDecoder,
} from "../_decode/mod.ts";

export { groupNames, jsonDecoder, type LineDecoder, regexDecoder } from "../_decode/mod.ts";

const decodeSchema = z.discriminatedUnion("mode", [
  z.strictObject({
    mode: z.literal("regex").describe(
      "Every line the device sends is matched by `pattern`",
    ),
    pattern: pattern(),
    ...conversions,
  }),
  z.strictObject({
    mode: z.literal("json").describe(
      "Every line is JSON: a sample object `{metric, value, unit?, ts?}`, an array of them, " +
        "or a flat object of metric → number",
    ),
    ...conversions,
  }),
  z.strictObject({
    mode: z.literal("poll").describe(
      "Request/response: write `command` every `interval`, read one reply line and match it",
    ),
    command: z.string().min(1).describe(
      'Text written to ask for a reading, e.g. "READ\\r\\n"',
    ),
    interval: duration({ timer: true }).prefault("1s").describe("How often to ask"),
    timeout: duration({ timer: true }).prefault("500ms").describe(
      "How long to wait for the reply line; no reply marks the device down until one comes",
    ),
    pattern: pattern(),
    ...conversions,
  }),
]).describe("How lines become samples: `regex`, `json` or `poll`");

/** The config schema of the `serial` device. */
export const configSchema = z.strictObject({
  path: z.string().startsWith("/", {
    error: "Expected an absolute path such as /dev/ttyUSB0",
  })
    .describe(
      "Serial port device, e.g. `/dev/ttyUSB0`; paths outside /dev/ must be in `allowed_paths`",
    ),
  baud_rate: z.int().positive().default(9600).describe(
    "Line speed in bits per second",
  ),
  data_bits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)])
    .default(8)
    .describe("Data bits per character: 5, 6, 7 or 8"),
  parity: z.enum(["none", "even", "odd", "mark", "space"]).default("none")
    .describe("Parity bit"),
  stop_bits: z.union([z.literal(1), z.literal(1.5), z.literal(2)]).default(1)
    .describe(
      "Stop bits: 1, 1.5 or 2",
    ),
  allowed_paths: z.array(z.string().startsWith("/")).default([]).describe(
    "Extra paths (or directories holding them) the driver host may open outside /dev/, " +
      "such as pty links made by socat",
  ),
  decode: decodeSchema,
});

/** A validated `serial` config. */
export type SerialConfig = z.output<typeof configSchema>;

export default defineDevice({
  name: "serial",
  summary: "Serial (UART) sensors: regex, JSON-lines or request/response decoding",
  version: "0.1.0",
  description: "Reads a serial port through the Node.js driver host (`deno task drivers` " +
    "installs it). Lines are stamped in the host when read.",
  config: configSchema,
  async create(config, ctx) {
    await requireHostPackages("serial");
    const { decode } = config;
    const conv: Conversions = decode;
    const decodeLine = decode.mode === "json"
      ? jsonDecoder(ctx.name, conv)
      : regexDecoder(ctx.name, decode.pattern, conv);
    const open = {
      device: ctx.name,
      kind: "serial" as const,
      path: config.path,
      baud_rate: config.baud_rate,
      data_bits: config.data_bits,
      parity: config.parity,
      stop_bits: config.stop_bits,
      allowed_paths: config.allowed_paths,
    };
    const stamp = sequencer();

    /** Decodes lines read at `ts`; lines that do not decode count as read errors. */
    function decodeAll(io: DeviceIO, lines: readonly string[], ts: number): SampleInput[] {
      const samples: SampleInput[] = [];
      for (const line of lines) {
        try {
          for (const s of decodeLine(line, ts)) samples.push(stamp(s));
        } catch (error) {
          io.readError(error);
        }
      }
      return samples;
    }

    const listen = (io: DeviceIO) => async (event: HostEvent) => {
      if (event.event === "error") io.readError(new Error(event.error));
      if (event.event !== "data" || !event.lines) return;
      const samples = decodeAll(io, event.lines, event.ts);
      if (samples.length > 0) await io.emit(samples);
    };

    return hostDevice(ctx, open, async (device, io) => {
      io.up();
      if (decode.mode !== "poll") return await untilClosedOrAborted(device, io.signal);
      const ask = { data: decode.command, timeout: decode.timeout };
      await pollUntilClosed(
        device,
        io.signal,
        decode.interval,
        async () => {
          const reply = await device.request("request", ask).catch((error) => {
            const command = JSON.stringify(decode.command);
            throw new Error(`No reply to ${command} on "${config.path}"`, { cause: error });
          });
          const samples = decodeAll(io, [String(reply.line)], Number(reply.ts));
          if (samples.length > 0) await io.emit(samples);
        },
        (error) => io.down(error),
        ctx.clock,
      );
    }, listen);
  },
});

/**
 * The config schema of the `modbus` device: every field described, so the
 * README table, `validate` and the admin API's plugin listing come from it.
 *
 * @module
 */
import { duration, z } from "../../core/mod.ts";

const tcp = z.strictObject({
  transport: z.literal("tcp").describe("Modbus TCP, straight from Deno"),
  host: z.string().min(1).describe("Host name or address of the Modbus TCP server (PLC, gateway)"),
  port: z.int().min(1).max(65535).default(502).describe("TCP port of the server"),
});

const rtu = z.strictObject({
  transport: z.literal("rtu").describe(
    "Modbus RTU on a serial line, through the Node.js driver host",
  ),
  path: z.string().startsWith("/", { error: "Expected an absolute path such as /dev/ttyUSB0" })
    .describe(
      "Serial port of the RS-485/RS-232 line, e.g. `/dev/ttyUSB0`; paths outside /dev/ must be " +
        "in `allowed_paths`",
    ),
  baud_rate: z.int().positive().default(9600).describe("Line speed in bits per second"),
  data_bits: z.union([z.literal(7), z.literal(8)]).default(8).describe(
    "Data bits per character: 7 or 8",
  ),
  parity: z.enum(["none", "even", "odd"]).default("none").describe("Parity bit"),
  stop_bits: z.union([z.literal(1), z.literal(2)]).default(1).describe("Stop bits: 1 or 2"),
  allowed_paths: z.array(z.string().startsWith("/")).default([]).describe(
    "Extra paths (or directories holding them) the driver host may open outside /dev/, " +
      "such as pty links made by socat",
  ),
});

const valueSchema = z.strictObject({
  metric: z.string().min(1).describe("Metric name of the samples this value gives"),
  unit_id: z.int().min(0).max(255).optional().describe(
    "Unit id (slave address) to ask; the group's, else the device's `unit_id` when absent",
  ),
  table: z.enum(["holding", "input", "coil", "discrete"]).default("holding").describe(
    "Which table: `holding` registers (function 3), `input` registers (4), `coil`s (1) or " +
      "`discrete` inputs (2); coils and discrete inputs give 0 or 1",
  ),
  address: z.int().min(0).max(65535).describe(
    "Zero-based address of the (first) register or bit, as on the wire: register 40001 is " +
      "holding address 0",
  ),
  type: z.enum(["int16", "uint16", "int32", "uint32", "float32", "float64"]).default("uint16")
    .describe(
      "Data type of a register value: 16-bit types take one register, 32-bit two, float64 four; " +
        "ignored for coils and discrete inputs",
    ),
  byte_order: z.enum(["big", "little"]).default("big").describe(
    "Byte order inside each register: `big` (high byte first, the Modbus standard) or `little`",
  ),
  word_order: z.enum(["big", "little"]).default("big").describe(
    'Register order of 32/64-bit values: `big` (most significant register first, "ABCD") or ' +
      '`little` ("CDAB", common on PLCs)',
  ),
  scale: z.number().default(1).describe("Factor applied to the raw value (`raw × scale + offset`)"),
  offset: z.number().default(0).describe("Added after scaling"),
  unit: z.string().optional().describe("Unit of the samples, e.g. `°C`"),
});

const groupSchema = z.strictObject({
  name: z.string().optional().describe("Name of the group in messages; its index when absent"),
  interval: duration({ timer: true }).prefault("1s").describe("How often the group is read"),
  unit_id: z.int().min(0).max(255).optional().describe(
    "Unit id of the group's values that set none; the device's `unit_id` when absent",
  ),
  values: z.array(valueSchema).min(1).describe(
    "The values read together every `interval`, batched into as few requests as their " +
      "addresses allow",
  ),
});

/** The config schema of the `modbus` device. */
export const configSchema = z.strictObject({
  connection: z.discriminatedUnion("transport", [tcp, rtu]).describe(
    "Where the devices are: `tcp` (host, port) or `rtu` (serial line)",
  ),
  unit_id: z.int().min(0).max(255).default(1).describe(
    "Default unit id (slave address) of the values; several units share one connection",
  ),
  timeout: duration({ timer: true }).prefault("1s").describe(
    "How long to wait for each reply before retrying",
  ),
  retries: z.int().min(0).max(10).default(2).describe(
    "Retries of a request that got no reply; once they are used up the device is down until a " +
      "read succeeds",
  ),
  max_gap: z.int().min(0).max(124).default(0).describe(
    "Unused registers a batched read may span between two values (fewer requests, but the " +
      "device must answer for the whole range)",
  ),
  groups: z.array(groupSchema).min(1).describe(
    "Polling groups: each has its own interval; their requests share the connection",
  ),
});

/** A validated `modbus` config. */
export type ModbusConfig = z.output<typeof configSchema>;

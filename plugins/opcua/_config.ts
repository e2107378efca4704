/**
 * The config schema of the `opcua` device.
 *
 * @module
 */
import { duration, z } from "../../core/mod.ts";
import { nodeTable } from "./_map.ts";

const deadband = z.strictObject({
  type: z.enum(["absolute", "percent"]).describe(
    "`absolute`: report a change only when it exceeds `value`; `percent`: when it exceeds " +
      "`value` percent of the node's EURange (the server must know it)",
  ),
  value: z.number().min(0).describe("The deadband: an amount, or a percentage from 0 to 100"),
}).refine((d) => d.type === "absolute" || d.value <= 100, {
  error: "A percent deadband is at most 100",
}).describe("Report only changes larger than this (a DataChangeFilter); default: every change");

/** Settings a node may override. */
const itemSettings = {
  sampling_interval: duration().optional().describe(
    "How often the server samples this node; default: the device's `sampling_interval`",
  ),
  queue_size: z.int().min(1).max(100_000).optional().describe(
    "Changes the server keeps for this node between publishes; default: the device's `queue_size`",
  ),
  deadband: deadband.optional(),
};

const node = z.strictObject({
  node_id: z.string().min(1).describe(
    'The node to monitor, e.g. "ns=2;s=Boiler1.Temperature" or "ns=3;i=1001" ' +
      "(`deno task opcua-browse <endpoint>` lists them)",
  ),
  device: z.string().min(1).optional().describe(
    "Device of its samples; default: this device's name",
  ),
  metric: z.string().min(1).describe("Metric of its samples"),
  unit: z.string().min(1).optional().describe("Unit of its samples"),
  ...itemSettings,
});

const security = z.strictObject({
  mode: z.enum(["None", "SignAndEncrypt"]).default("None").describe(
    "`None` (plain), or `SignAndEncrypt` (every message signed and encrypted)",
  ),
  policy: z.literal("Basic256Sha256").default("Basic256Sha256").describe(
    "Security policy with `SignAndEncrypt`",
  ),
  certificate_file: z.string().min(1).optional().describe(
    "This client's certificate (PEM), which the server must trust; its URI " +
      "(subjectAltName) is used as the application URI. Needed for `SignAndEncrypt`",
  ),
  private_key_file: z.string().min(1).optional().describe(
    "Private key (PEM) of `certificate_file`",
  ),
  server_certificate_file: z.string().min(1).optional().describe(
    "The server's certificate (PEM or DER) to trust; without it, any server certificate is " +
      "accepted (and kept in `pki_dir`)",
  ),
}).refine((s) => s.mode === "None" || (s.certificate_file && s.private_key_file), {
  error: "SignAndEncrypt needs certificate_file and private_key_file",
}).refine((s) => (s.certificate_file === undefined) === (s.private_key_file === undefined), {
  error: "certificate_file and private_key_file go together",
}).prefault({}).describe(
  "Message security; files are relative to the configuration file",
);

/** The config schema of the `opcua` device. */
export const configSchema = z.strictObject({
  endpoint: z.string().regex(/^opc\.tcp:\/\/[^\s]+$/, {
    error: 'Expected an endpoint URL such as "opc.tcp://127.0.0.1:4840"',
  }).describe("Server endpoint URL, e.g. opc.tcp://plc-1:4840"),
  security,
  pki_dir: z.string().min(1).default("data/opcua-pki").describe(
    "Folder of the client's PKI (trusted and rejected server certificates), relative to the " +
      "working directory; must be writable (`deno task run` may write in ./data)",
  ),
  publishing_interval: duration({ timer: true }).pipe(z.number().min(10)).prefault("1s")
    .describe("How often the server sends the changes of the subscription"),
  sampling_interval: duration().prefault("1s").describe(
    "How often the server samples each node (0: on every change, where the server can)",
  ),
  queue_size: z.int().min(1).max(100_000).default(10).describe(
    "Changes the server keeps per node between publishes; more are lost (oldest first)",
  ),
  deadband: deadband.optional(),
  connect_timeout: duration({ timer: true }).prefault("5s").describe(
    "Longest wait for the server to answer when connecting",
  ),
  keepalive: duration({ timer: true }).pipe(z.number().min(100)).prefault("5s").describe(
    "The subscription's keep-alive: a server silent for 3 of them counts as gone (device down)",
  ),
  nodes: z.array(node).min(1).superRefine((nodes, ctx) => {
    // Same checks as nodeTable(), here so that `validate` names the line.
    try {
      nodeTable(nodes, "\u0000this device");
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message.replace("\u0000", "") });
    }
  }).describe(
    "The node table: the nodes to monitor and the device and metric each one feeds",
  ),
});

/** A validated `opcua` config. */
export type OpcuaConfig = z.output<typeof configSchema>;
/** One node of the table. */
export type OpcuaNode = OpcuaConfig["nodes"][number];

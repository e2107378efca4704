/**
 * A node-opcua server for the `opcua` tests and bench, run as its own
 * process (`deno run -A tests/_fixtures/opcua_server.ts --port N`) so a
 * test can kill it by pid and start it again. Prints `ready <endpoint>`
 * on stdout once it listens.
 *
 * Variables (namespace 1, string ids), changed every `--every` ms:
 * - `Plant.Temp` (Double): 0, 1, 2…, with the source timestamp
 *   2020-01-01T00:00:00Z + value seconds, so a test can tell it from the
 *   receive time.
 * - `Plant.Running` (Boolean): alternates.
 * - `Plant.Broken` (Double): status `BadSensorFailure`, value 0.
 * - `Bench.V0` … `Bench.V<n-1>` with `--bench n`: each one a counter with
 *   the current time as source timestamp.
 *
 * `--pki <dir>`: the server's PKI root; it offers SignAndEncrypt with
 * Basic256Sha256 only and trusts the client certificates it is shown.
 *
 * @module
 */
import {
  DataType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAServer,
  SecurityPolicy,
  StatusCodes,
  Subscription,
  type UAVariable,
  Variant,
} from "node-opcua";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    pki: { type: "string" },
    every: { type: "string", default: "100" },
    bench: { type: "string", default: "0" },
  },
});
const port = Number(args.port);
const every = Number(args.every);
const bench = Number(args.bench);

// The bench's rates are above node-opcua's defaults (a publish every 50 ms at the fastest, at most
// 1,000 notifications each): the limits of this server, not of the client under test.
if (bench > 0) {
  Subscription.minimumPublishingInterval = 10;
  Subscription.maxNotificationPerPublishHighLimit = 20_000;
}

const secure = args.pki !== undefined;
const server = new OPCUAServer({
  port,
  hostname: "127.0.0.1",
  // Listens on loopback only, where freePort() found the port free.
  host: "127.0.0.1",
  resourcePath: "/UA/TelemetryHubTest",
  buildInfo: { productName: "TelemetryHub test server" },
  maxConnectionsPerEndpoint: 50,
  // 0: items asking for sampling interval 0 get every change (exception-based), not at most
  // one per 50 ms per item, node-opcua's default.
  serverCapabilities: { minSupportedSampleRate: 0 },
  ...(secure
    ? {
      serverCertificateManager: new OPCUACertificateManager({
        rootFolder: args.pki!,
        automaticallyAcceptUnknownCertificate: true,
        // Watchers throw uncaught ENOENT under Deno when a file vanishes (see the plugin).
        disableFileWatchers: true,
      }),
      securityModes: [MessageSecurityMode.SignAndEncrypt],
      securityPolicies: [SecurityPolicy.Basic256Sha256],
    }
    : {
      securityModes: [MessageSecurityMode.None],
      securityPolicies: [SecurityPolicy.None],
    }),
});
await server.initialize();
const addressSpace = server.engine.addressSpace!;
const ns = addressSpace.getOwnNamespace();
const plant = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Plant" });
// minimumSamplingInterval 0: reported on every change, not sampled.
const variable = (parent: typeof plant, name: string, dataType: DataType, value: unknown) =>
  ns.addVariable({
    componentOf: parent,
    browseName: name,
    nodeId: `s=${parent.browseName.name}.${name}`,
    dataType,
    minimumSamplingInterval: 0,
    value: new Variant({ dataType, value }),
  });
const temp = variable(plant, "Temp", DataType.Double, 0);
const running = variable(plant, "Running", DataType.Boolean, false);
const broken = variable(plant, "Broken", DataType.Double, 0);
broken.setValueFromSource(
  new Variant({ dataType: DataType.Double, value: 0 }),
  StatusCodes.BadSensorFailure,
  new Date(),
);

const benchVars: UAVariable[] = [];
if (bench > 0) {
  const folder = ns.addObject({
    organizedBy: addressSpace.rootFolder.objects,
    browseName: "Bench",
  });
  for (let i = 0; i < bench; i++) benchVars.push(variable(folder, `V${i}`, DataType.Double, 0));
}

const T0 = Date.UTC(2020, 0, 1);
let tick = 0;
setInterval(() => {
  tick++;
  temp.setValueFromSource(
    new Variant({ dataType: DataType.Double, value: tick }),
    StatusCodes.Good,
    new Date(T0 + tick * 1000),
  );
  running.setValueFromSource(new Variant({ dataType: DataType.Boolean, value: tick % 2 === 1 }));
  broken.setValueFromSource(
    new Variant({ dataType: DataType.Double, value: tick }),
    StatusCodes.BadSensorFailure,
    new Date(),
  );
  const now = new Date();
  for (const v of benchVars) {
    v.setValueFromSource(
      new Variant({ dataType: DataType.Double, value: tick }),
      StatusCodes.Good,
      now,
    );
  }
}, every);

// With --bench, the changes made each second on stdout: what the bench offered, measured.
if (bench > 0) {
  let last = tick;
  setInterval(() => {
    console.log(`changes ${(tick - last) * bench}`);
    last = tick;
  }, 1000);
}

await server.start();
console.log(`ready ${server.getEndpointUrl()}`);

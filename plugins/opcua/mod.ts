/**
 * The `opcua` device: one subscription on an OPC UA server, with a
 * monitored item per node of the node table, through npm
 * `node-opcua-client` (pure JavaScript; it runs under Deno's Node
 * compatibility, so no Node.js child is needed).
 *
 * Each data change becomes a sample of the node's device and metric, with
 * the value's source timestamp as `ts` and a Bad or Uncertain status as
 * `quality: "bad"` (see `_map.ts`). A lost connection, a closed session or
 * a terminated subscription ends `run()` with an error: the runtime marks
 * the device down and runs it again with its backoff, which connects and
 * subscribes afresh (a restarted server has forgotten the old session).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { isAbsolute, join, resolve } from "node:path";
import type { ClientMonitoredItemBase, DataValue } from "node-opcua-client";
import type { OPCUACertificateManager } from "node-opcua-certificate-manager";
import { defineDevice, type DeviceIO, errorMessage, type SampleInput } from "../../core/mod.ts";
import { configSchema, type OpcuaConfig, type OpcuaNode } from "./_config.ts";
import { nodeTable, type NodeTarget, toSample } from "./_map.ts";

export { configSchema } from "./_config.ts";

type Deadband = OpcuaConfig["deadband"];

/** The monitoring settings of `node`, its own or the device's. */
function itemSettings(config: OpcuaConfig, node: OpcuaNode) {
  return {
    samplingInterval: node.sampling_interval ?? config.sampling_interval,
    queueSize: node.queue_size ?? config.queue_size,
    deadband: (node.deadband ?? config.deadband) as Deadband,
  };
}

/** DER bytes of a PEM or DER certificate file. */
function certificateDer(bytes: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(bytes);
  const match = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(text);
  if (!match) return bytes;
  return Uint8Array.from(atob(match[1]!.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}

/** The first URI in a certificate's subjectAltName: the client's application URI. */
export function certificateUri(pem: string): string | undefined {
  const alt = new X509Certificate(pem).subjectAltName ?? "";
  return /(?:^|,\s*)URI:([^,\s]+)/.exec(alt)?.[1];
}

/**
 * Puts `OPENSSL_CONF` back: node-opcua-crypto sets it to /dev/null while it
 * reads a private key and then restores an unset one as the string
 * "undefined", which breaks `openssl` in every child process started later.
 */
function restoreOpensslConf(before: string | undefined): void {
  if (Deno.env.get("OPENSSL_CONF") === before) return;
  if (before === undefined) Deno.env.delete("OPENSSL_CONF");
  else Deno.env.set("OPENSSL_CONF", before);
}

/** Resolves when `signal` aborts or `failed` rejects; the rejection wins. */
function untilAbortOr(signal: AbortSignal, failed: Promise<never>): Promise<void> {
  return Promise.race([
    failed,
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
    }),
  ]);
}

export default defineDevice({
  name: "opcua",
  summary: "OPC UA subscriptions: monitored items mapped by node id, source timestamps, status",
  version: "0.1.0",
  description: "Subscribes to nodes of an OPC UA server (security None or SignAndEncrypt with " +
    "Basic256Sha256) and turns each data change into a sample of the node's device and " +
    "metric, keeping the source timestamp; Bad and Uncertain statuses become quality bad.",
  config: configSchema,
  async create(config, ctx) {
    const targets: NodeTarget[] = nodeTable(config.nodes, ctx.name);
    const file = (path: string) => isAbsolute(path) ? path : join(ctx.baseDir, path);
    const read = async (path: string, what: string) => {
      try {
        return await Deno.readFile(file(path));
      } catch (error) {
        throw new Error(`Cannot read the OPC UA ${what} "${path}": ${errorMessage(error)}`);
      }
    };
    const sec = config.security;
    const certificatePem = sec.certificate_file
      ? new TextDecoder().decode(await read(sec.certificate_file, "certificate"))
      : undefined;
    if (sec.private_key_file) await read(sec.private_key_file, "private key");
    const serverCertificate = sec.server_certificate_file
      ? certificateDer(await read(sec.server_certificate_file, "server certificate"))
      : undefined;
    let applicationUri: string | undefined;
    if (certificatePem) {
      try {
        applicationUri = certificateUri(certificatePem);
      } catch (error) {
        throw new Error(
          `Cannot read the OPC UA certificate "${sec.certificate_file}": ${errorMessage(error)}`,
        );
      }
    }
    const pkiDir = resolve(config.pki_dir);
    const pauses = ctx.metrics.counter(
      "opcua_publishing_paused_total",
      "Times the server was told to stop publishing because the hub queue was full",
    );
    let stop: (() => Promise<void>) | undefined;
    let certificates: OPCUACertificateManager | undefined;
    const makeCertificates = async () => {
      const { OPCUACertificateManager } = await import("node-opcua-certificate-manager");
      const manager = new OPCUACertificateManager({
        rootFolder: pkiDir,
        automaticallyAcceptUnknownCertificate: serverCertificate === undefined,
        // No chokidar watchers: under Deno a file that vanishes while one is being watched
        // (a rejected certificate moved, say) throws an uncaught ENOENT and ends the process.
        // The folder is read at each connection instead.
        disableFileWatchers: true,
      });
      await manager.initialize();
      if (serverCertificate) {
        // A Buffer (node-opcua reads it with readUInt8), of DER bytes.
        await manager.trustCertificate(Buffer.from(serverCertificate));
      }
      return manager;
    };

    return {
      async run(io: DeviceIO): Promise<void> {
        // Loaded here, not at the top: a heavy dependency only configs with OPC UA pay for.
        const opcua = await import("node-opcua-client");
        const opensslConf = Deno.env.get("OPENSSL_CONF");
        // One per device, kept across runs: it owns the PKI folder.
        certificates ??= await makeCertificates();
        const secure = sec.mode === "SignAndEncrypt";
        const client = opcua.OPCUAClient.create({
          applicationName: "TelemetryHub",
          ...(applicationUri ? { applicationUri } : {}),
          clientCertificateManager: certificates,
          ...(sec.certificate_file ? { certificateFile: file(sec.certificate_file) } : {}),
          ...(sec.private_key_file ? { privateKeyFile: file(sec.private_key_file) } : {}),
          securityMode: secure
            ? opcua.MessageSecurityMode.SignAndEncrypt
            : opcua.MessageSecurityMode.None,
          securityPolicy: secure ? opcua.SecurityPolicy.Basic256Sha256 : opcua.SecurityPolicy.None,
          endpointMustExist: false,
          // One attempt: reconnecting is the runtime's job (down, backoff, run again), so a
          // restarted server gets a new session and new monitored items.
          connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 100 },
          transportTimeout: config.connect_timeout,
          keepSessionAlive: false,
        });
        let fail!: (error: Error) => void;
        const failed = new Promise<never>((_, reject) => fail = reject);
        failed.catch(() => {});
        const where = config.endpoint;
        client.on(
          "connection_lost",
          () => fail(new Error(`OPC UA server "${where}" is unreachable`)),
        );
        client.on(
          "close",
          (error?: Error | null) =>
            fail(
              new Error(
                `OPC UA connection to "${where}" closed${error ? `: ${error.message}` : ""}`,
              ),
            ),
        );
        let watchdog: ReturnType<typeof setInterval> | undefined;
        let closed = false;
        stop = async () => {
          if (closed) return;
          closed = true;
          await client.disconnect().catch(() => {});
        };
        try {
          const timeout = AbortSignal.timeout(config.connect_timeout);
          const connecting = client.connect(where);
          await Promise.race([
            connecting,
            new Promise((_, reject) =>
              timeout.addEventListener(
                "abort",
                () =>
                  reject(
                    new Error(
                      `OPC UA server "${where}" did not answer within ${config.connect_timeout} ms`,
                    ),
                  ),
              )
            ),
          ]).catch((error) => {
            throw new Error(`Cannot connect to OPC UA server "${where}": ${errorMessage(error)}`);
          });
          if (io.signal.aborted) return;
          const session = await client.createSession();
          restoreOpensslConf(opensslConf);
          session.on(
            "session_closed",
            () => fail(new Error(`OPC UA session at "${where}" closed`)),
          );
          const keepAliveCount = Math.max(
            1,
            Math.ceil(config.keepalive / config.publishing_interval),
          );
          const subscription = await session.createSubscription2({
            requestedPublishingInterval: config.publishing_interval,
            requestedMaxKeepAliveCount: keepAliveCount,
            requestedLifetimeCount: keepAliveCount * 3,
            maxNotificationsPerPublish: 0,
            publishingEnabled: true,
            priority: 10,
          });
          subscription.on(
            "terminated",
            () => fail(new Error(`OPC UA subscription at "${where}" terminated`)),
          );
          // A server that stops answering without closing the connection (a network partition, a
          // hung PLC) sends neither changes nor keep-alives: 3 keep-alive periods of silence end
          // the run like a lost connection.
          let heard = Date.now();
          subscription.on("keepalive", () => {
            heard = Date.now();
            io.up();
          });
          subscription.on("received_notifications", () => heard = Date.now());
          watchdog = setInterval(() => {
            if (Date.now() - heard > 3 * config.keepalive) {
              fail(
                new Error(`OPC UA server "${where}" sent nothing for ${3 * config.keepalive} ms`),
              );
            }
          }, config.keepalive);
          subscription.on(
            "internal_error",
            (error: Error) =>
              fail(new Error(`OPC UA subscription at "${where}": ${error.message}`)),
          );

          // One CreateMonitoredItems call per distinct setting (usually one).
          const groups = new Map<
            string,
            { settings: ReturnType<typeof itemSettings>; at: number[] }
          >();
          config.nodes.forEach((node, at) => {
            const settings = itemSettings(config, node);
            const key = JSON.stringify(settings);
            const group = groups.get(key) ?? { settings, at: [] };
            group.at.push(at);
            groups.set(key, group);
          });
          // Samples of one publish go out as one batch, after the notifications are handled.
          let pending: SampleInput[] = [];
          let flushQueued = false;
          // Backpressure: while the hub queue is full (`overflow: block`), the server is told to
          // stop publishing; it keeps changes in its per-node queues (`queue_size`, oldest
          // dropped) and publishes again once the hub has room.
          let blocked = 0;
          const setPublishing = (on: boolean) => {
            if (!on) pauses.inc();
            ctx.logger.debug(on ? "Publishing resumed" : "Hub queue full: publishing paused");
            subscription.setPublishingMode(on).catch((error: Error) =>
              io.readError(new Error(`Cannot set publishing mode at "${where}": ${error.message}`))
            );
          };
          const flush = () => {
            flushQueued = false;
            const batch = pending;
            pending = [];
            if (batch.length === 0) return;
            const queued = io.emit(batch);
            if (!queued) return;
            if (blocked++ === 0) setPublishing(false);
            const done = () => {
              if (--blocked === 0 && !io.signal.aborted) setPublishing(true);
            };
            queued.then(done, done);
          };
          for (const { settings, at } of groups.values()) {
            const filter = settings.deadband
              ? new opcua.DataChangeFilter({
                trigger: opcua.DataChangeTrigger.StatusValue,
                deadbandType: settings.deadband.type === "absolute"
                  ? opcua.DeadbandType.Absolute
                  : opcua.DeadbandType.Percent,
                deadbandValue: settings.deadband.value,
              })
              : null;
            const group = await subscription.monitorItems(
              at.map((i) => ({
                nodeId: opcua.resolveNodeId(config.nodes[i]!.node_id),
                attributeId: opcua.AttributeIds.Value,
              })),
              {
                samplingInterval: settings.samplingInterval,
                queueSize: settings.queueSize,
                discardOldest: true,
                filter,
              },
              opcua.TimestampsToReturn.Both,
            );
            group.monitoredItems.forEach((item: ClientMonitoredItemBase, k: number) => {
              const status = item.statusCode;
              if (status && status.value !== 0) {
                io.readError(
                  new Error(
                    `Cannot monitor node "${config.nodes[at[k]!]!.node_id}": ${status.name}`,
                  ),
                );
              }
            });
            group.on("changed", (_item: ClientMonitoredItemBase, value: DataValue, k: number) => {
              const target = targets[at[k]!]!;
              const mapped = toSample(target, {
                value: value.value?.value,
                status: value.statusCode.value,
                statusName: value.statusCode.name,
                sourceTimestamp: value.sourceTimestamp,
                serverTimestamp: value.serverTimestamp,
              });
              if ("error" in mapped) return io.readError(new Error(mapped.error));
              pending.push(mapped.sample);
              if (!flushQueued) {
                flushQueued = true;
                queueMicrotask(flush);
              }
            });
          }
          io.up();
          await untilAbortOr(io.signal, failed);
        } finally {
          clearInterval(watchdog);
          restoreOpensslConf(opensslConf);
          await stop();
        }
      },
      async close() {
        await stop?.();
        await certificates?.dispose();
      },
    };
  },
});

/**
 * `deno task opcua-browse <endpoint> [--root <node id>] [--depth <n>]`:
 * walks the server's address space from the Objects folder (or `--root`)
 * and prints every variable as a node-table entry to paste under
 * `nodes:` in telemetry.yaml. Security mode None; the client's PKI goes to
 * `--pki` (default data/opcua-pki).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { metricName } from "./_map.ts";

/** A variable found by {@link browse}. */
export interface BrowsedVariable {
  nodeId: string;
  /** Browse names from the root down to the variable. */
  path: string[];
  dataType: string;
}

/** The node-table lines for `found`, as YAML. */
export function nodeTableYaml(endpoint: string, found: readonly BrowsedVariable[]): string {
  const lines = [`# ${found.length} variables at ${endpoint}`, "nodes:"];
  for (const v of found) {
    lines.push(
      `  - { node_id: ${JSON.stringify(v.nodeId)}, metric: ${
        metricName(v.path)
      } }  # ${v.dataType}, ${v.path.join("/")}`,
    );
  }
  return lines.join("\n");
}

/** Every variable below `root`, depth first, at most `depth` levels down (namespace 0 skipped). */
export async function browse(
  endpoint: string,
  options: { root?: string; depth?: number; pki?: string } = {},
): Promise<BrowsedVariable[]> {
  const { root = "ns=0;i=85", depth = 6, pki = "data/opcua-pki" } = options;
  const opcua = await import("node-opcua-client");
  const { OPCUACertificateManager } = await import("node-opcua-certificate-manager");
  const client = opcua.OPCUAClient.create({
    applicationName: "TelemetryHub browse",
    clientCertificateManager: new OPCUACertificateManager({
      rootFolder: resolve(pki),
      automaticallyAcceptUnknownCertificate: true,
      disableFileWatchers: true, // see mod.ts
    }),
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 100 },
  });
  try {
    await client.connect(endpoint);
    const session = await client.createSession();
    const found: BrowsedVariable[] = [];
    const seen = new Set<string>();
    const walk = async (nodeId: string, path: string[], level: number): Promise<void> => {
      if (level > depth || seen.has(nodeId)) return;
      seen.add(nodeId);
      const result = await session.browse({
        nodeId,
        referenceTypeId: "HierarchicalReferences",
        includeSubtypes: true,
        browseDirection: opcua.BrowseDirection.Forward,
        nodeClassMask: opcua.NodeClassMask.Object | opcua.NodeClassMask.Variable,
        resultMask: 0x3f,
      });
      for (const ref of result.references ?? []) {
        // Namespace 0 is the standard's own nodes (the Server object): not telemetry.
        if (ref.nodeId.namespace === 0) continue;
        const id = ref.nodeId.toString();
        const here = [...path, ref.browseName.name ?? id];
        if (ref.nodeClass === opcua.NodeClass.Variable) {
          found.push({ nodeId: id, path: here, dataType: "" });
        }
        await walk(id, here, level + 1);
      }
    };
    await walk(root, [], 1);
    if (found.length > 0) {
      const types = await session.read(
        found.map((v) => ({ nodeId: v.nodeId, attributeId: opcua.AttributeIds.DataType })),
      );
      types.forEach((t, i) => {
        const type = t.value?.value;
        const builtin = type?.namespace === 0 ? opcua.DataType[type.value as number] : undefined;
        found[i]!.dataType = builtin ?? String(type ?? "?");
      });
    }
    await session.close();
    return found;
  } finally {
    await client.disconnect().catch(() => {});
  }
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      root: { type: "string" },
      depth: { type: "string" },
      pki: { type: "string" },
    },
  });
  const endpoint = positionals[0];
  if (!endpoint || !/^opc\.tcp:\/\//.test(endpoint)) {
    console.error(
      "Usage: deno task opcua-browse opc.tcp://host:4840 [--root ns=0;i=85] [--depth 6] [--pki dir]",
    );
    Deno.exit(2);
  }
  try {
    const found = await browse(endpoint, {
      ...(values.root ? { root: values.root } : {}),
      ...(values.depth ? { depth: Number(values.depth) } : {}),
      ...(values.pki ? { pki: values.pki } : {}),
    });
    console.log(nodeTableYaml(endpoint, found));
    Deno.exit(0);
  } catch (error) {
    console.error(
      `Cannot browse OPC UA server "${endpoint}": ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
    Deno.exit(1);
  }
}

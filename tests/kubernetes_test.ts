/**
 * deploy/kubernetes as kubectl renders it: every overlay renders, every object validates against
 * the Kubernetes OpenAPI schemas (npm kubernetes-models, pinned; KEDA's from
 * @kubernetes-models/keda), and the manifests keep the promises docs/deployment.md makes.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { ROOT } from "./_fixtures/cli.ts";
import { needs, run } from "./_fixtures/tools.ts";

const DIR = `${ROOT}deploy/kubernetes`;
const OVERLAYS = ["base", "overlays/production", "overlays/keda", "overlays/devices"];

/** The schema class of each apiVersion and kind the manifests use. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Namespace": Namespace,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/DaemonSet": DaemonSet,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
};

// Rendered Kubernetes objects are open-ended; the checks below read the few fields they need.
// deno-lint-ignore no-explicit-any
type K8sObject = any;

/** `kubectl kustomize` of a directory of deploy/kubernetes, as objects. */
async function render(dir: string): Promise<K8sObject[]> {
  const out = await run("kubectl", [
    "kustomize",
    "--load-restrictor",
    "LoadRestrictionsNone", // the fleet config lies outside the kustomizations (deploy/)
    `${DIR}/${dir}`,
  ]);
  assert.equal(out.code, 0, `kubectl kustomize ${dir}: ${out.output}`);
  return parseAllDocuments(out.output).map((d) => d.toJS());
}

function id(o: K8sObject): string {
  return `${o.kind} ${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
}

const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet"]);
const KUBECTL_MISSING = await needs("kubectl");

for (const dir of OVERLAYS) {
  Deno.test({
    name: `kubectl kustomize ${dir} renders objects that validate against the Kubernetes schemas`,
    ignore: KUBECTL_MISSING,
    async fn() {
      const objects = await render(dir);
      assert.ok(objects.length > 20, `${objects.length} objects`);
      for (const o of objects) {
        const Model = MODELS[`${o.apiVersion}/${o.kind}`];
        assert.ok(Model, `${id(o)}: ${o.apiVersion} ${o.kind} has a schema here`);
        assert.doesNotThrow(() => new Model(o as never).validate(), `${id(o)} is valid`);
        if (o.kind !== "Namespace") assert.ok(o.metadata.namespace, `${id(o)} has a namespace`);
      }
    },
  });
}

Deno.test("the Secret template validates against the Kubernetes schema", async () => {
  const docs = parseAllDocuments(await Deno.readTextFile(`${DIR}/base/secret.template.yaml`));
  const secrets = docs.map((d) => d.toJS());
  assert.deepEqual(secrets.map((s) => s.metadata.namespace).sort(), [
    "task-processing",
    "telemetry-ingestion",
  ]);
  for (const s of secrets) new Secret(s).validate();
});

Deno.test({
  name:
    "every rendered workload runs non-root and read-only, with requests, limits and a pinned image, behind a PDB",
  ignore: KUBECTL_MISSING,
  async fn() {
    for (const dir of OVERLAYS) {
      const objects = await render(dir);
      const pdbs = objects.filter((o) => o.kind === "PodDisruptionBudget");
      for (const w of objects.filter((o) => WORKLOADS.has(o.kind))) {
        const pod = w.spec.template.spec;
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${dir} ${id(w)} runs as non-root`);
        assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault", id(w));
        for (const c of pod.containers) {
          const at = `${dir} ${id(w)} ${c.name}`;
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${at} is read-only`);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, at);
          assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"], at);
          assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${at} requests`);
          assert.ok(c.resources?.limits?.memory, `${at} has a memory limit`);
          assert.match(c.image, /:[0-9][\w.-]*$/, `${at} pins its image (${c.image})`);
        }
        for (const v of pod.volumes ?? []) {
          assert.equal(v.hostPath, undefined, `${id(w)}: no hostPath`);
        }
        if (w.kind === "DaemonSet") continue; // one per device node: drained with the node
        const labels = w.spec.template.metadata.labels;
        assert.ok(
          pdbs.some((p) =>
            p.metadata.namespace === w.metadata.namespace &&
            Object.entries(p.spec.selector.matchLabels).every(([k, v]) => labels[k] === v)
          ),
          `${dir} ${id(w)} has a PodDisruptionBudget`,
        );
      }
    }
  },
});

Deno.test({
  name:
    "the design's namespaces each deny by default, and the processors scale on queue depth (HPA, or KEDA alone)",
  ignore: KUBECTL_MISSING,
  async fn() {
    const base = await render("base");
    const namespaces = base.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name);
    assert.deepEqual(namespaces.sort(), [
      "message-broker",
      "task-processing",
      "telemetry-ingestion",
    ]);
    for (const ns of namespaces) {
      const deny = base.find((o) =>
        o.kind === "NetworkPolicy" && o.metadata.namespace === ns &&
        Object.keys(o.spec.podSelector).length === 0 && !o.spec.ingress && !o.spec.egress
      );
      assert.ok(deny, `${ns} has a default-deny NetworkPolicy`);
    }
    const where = (kind: string, objects: K8sObject[]) =>
      objects.filter((o) => o.kind === kind).map((o) =>
        `${o.metadata.namespace}/${o.metadata.name}`
      );
    assert.deepEqual(where("Deployment", base).sort(), [
      "message-broker/redis-proxy",
      "task-processing/telemetryhub-processor",
      "telemetry-ingestion/telemetryhub-hub",
    ]);
    assert.deepEqual(where("StatefulSet", base).sort(), [
      "message-broker/redis",
      "message-broker/redis-sentinel",
    ]);
    const redis = base.find((o) => o.kind === "StatefulSet" && o.metadata.name === "redis");
    assert.equal(redis.spec.replicas, 3, "a master and two replicas");
    const hpa = base.find((o) => o.kind === "HorizontalPodAutoscaler");
    assert.equal(hpa.spec.metrics[0].external.metric.name, "telemetry_queue_depth");
    const configs = base.filter((o) => o.kind === "ConfigMap" && o.data?.["telemetry.yaml"]);
    const fleet = await Deno.readTextFile(`${ROOT}deploy/telemetry.fleet.yaml`);
    assert.equal(configs.length, 2, "the fleet config in the hub's and the processors' namespace");
    for (const c of configs) assert.equal(c.data["telemetry.yaml"], fleet);

    const keda = await render("overlays/keda");
    assert.deepEqual(where("HorizontalPodAutoscaler", keda), [], "KEDA makes its own HPA");
    const scaled = keda.find((o) => o.kind === "ScaledObject");
    assert.equal(scaled.spec.triggers[0].metadata.listName, "telemetry:tasks");
  },
});

Deno.test({
  name: "the device overlay's hub configuration is valid",
  async fn() {
    const { runTask } = await import("./_fixtures/cli.ts");
    const ok = await runTask("validate", [
      "deploy/kubernetes/overlays/devices/telemetry.devices.yaml",
    ], { env: { TELEMETRY_ADMIN_TOKEN: "t0ken" } });
    assert.equal(ok.code, 0, ok.stderr);
  },
});

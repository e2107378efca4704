/**
 * deploy/kubernetes as kubectl renders it: every overlay renders, every object validates against
 * the Kubernetes OpenAPI schemas (npm kubernetes-models, pinned; KEDA's from
 * @kubernetes-models/keda), and the manifests keep the promises docs/deployment.md makes.
 */
import assert from "node:assert/strict";
import { parse, parseAllDocuments, stringify } from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
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
  "v1/ServiceAccount": ServiceAccount,
  "rbac.authorization.k8s.io/v1/ClusterRole": ClusterRole,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
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
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole"]);
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
        if (!CLUSTER_SCOPED.has(o.kind)) {
          assert.ok(o.metadata.namespace, `${id(o)} has a namespace`);
        }
      }
    },
  });
}

Deno.test("the Secret templates validate against the Kubernetes schema", async () => {
  const read = async (file: string) =>
    parseAllDocuments(await Deno.readTextFile(`${DIR}/${file}`)).map((d) => d.toJS());
  const secrets = await read("base/secret.template.yaml");
  assert.deepEqual(secrets.map((s) => s.metadata.namespace).sort(), [
    "task-processing",
    "telemetry-ingestion",
  ]);
  const grafana = await read("components/monitoring/secret.template.yaml");
  assert.deepEqual(grafana.map((s) => `${s.metadata.namespace}/${s.metadata.name}`), [
    "monitoring/grafana-secrets",
  ]);
  for (const s of [...secrets, ...grafana]) new Secret(s).validate();
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
          assert.match(c.image, /:v?[0-9][\w.-]*$/, `${at} pins its image (${c.image})`);
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

/** The production overlay's ConfigMap generated as `name` (kustomize appends a content hash). */
function generated(objects: K8sObject[], name: string): K8sObject {
  const found = objects.find((o) =>
    o.kind === "ConfigMap" && o.metadata.namespace === "monitoring" &&
    o.metadata.name.startsWith(`${name}-`)
  );
  assert.ok(found, `ConfigMap monitoring/${name}`);
  return found;
}

Deno.test({
  name:
    "production's monitoring: Prometheus discovers the hub and processor pods, with compose's alert rules and Grafana provisioning",
  ignore: KUBECTL_MISSING,
  async fn() {
    const objects = await render("overlays/production");
    const prometheus = generated(objects, "prometheus-config");
    const rules = await Deno.readTextFile(`${ROOT}deploy/prometheus/alerts.yml`);
    assert.equal(
      prometheus.data["alerts.yml"],
      rules,
      "the rules are deploy/prometheus/alerts.yml",
    );
    const config = parse(prometheus.data["prometheus.yml"]);
    assert.deepEqual(config.rule_files, ["alerts.yml"]);
    const [job] = config.scrape_configs;
    const [sd] = job.kubernetes_sd_configs;
    assert.equal(sd.role, "pod");
    assert.deepEqual(sd.namespaces.names, ["telemetry-ingestion", "task-processing"]);

    // Apply the job's keep rules to each rendered pod template, as Prometheus would to the pods'
    // __meta_kubernetes_pod_* labels: exactly the hub and the processors are kept, on 8080.
    const selector = Object.fromEntries(
      sd.selectors.map((s: { label: string }) => s.label.split("=")),
    );
    const meta = (prefix: string, map: Record<string, string> = {}) =>
      Object.fromEntries(
        Object.entries(map).map(([k, v]) => [`${prefix}${k.replace(/[^a-zA-Z0-9_]/g, "_")}`, v]),
      );
    const scraped = objects.filter((w) => WORKLOADS.has(w.kind)).filter((w) => {
      const labels = w.spec.template.metadata.labels ?? {};
      if (!sd.namespaces.names.includes(w.metadata.namespace)) return false;
      if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) return false;
      const source: Record<string, string> = {
        ...meta("__meta_kubernetes_pod_label_", labels),
        ...meta("__meta_kubernetes_pod_annotation_", w.spec.template.metadata.annotations),
      };
      return job.relabel_configs.filter((r: { action?: string }) => r.action === "keep").every(
        (r: { source_labels: string[]; regex: string }) =>
          new RegExp(`^(?:${r.regex})$`).test(
            r.source_labels.map((l) => source[l] ?? "").join(";"),
          ),
      );
    });
    assert.deepEqual(scraped.map(id).sort(), [
      "Deployment task-processing/telemetryhub-processor",
      "Deployment telemetry-ingestion/telemetryhub-hub",
    ]);
    for (const w of scraped) {
      assert.equal(w.spec.template.metadata.annotations["prometheus.io/port"], "8080", id(w));
    }

    // Discovery reads pods, services and endpoints, and only in the namespaces it scrapes.
    const role = objects.find((o) => o.kind === "ClusterRole");
    assert.deepEqual(role.rules, [{
      apiGroups: [""],
      resources: ["pods", "services", "endpoints"],
      verbs: ["get", "list", "watch"],
    }]);
    const bindings = objects.filter((o) => o.kind === "RoleBinding");
    assert.deepEqual(bindings.map((b) => b.metadata.namespace).sort(), sd.namespaces.names.sort());

    assert.ok(
      objects.some((o) =>
        o.kind === "NetworkPolicy" && o.metadata.namespace === "monitoring" &&
        Object.keys(o.spec.podSelector).length === 0 && !o.spec.ingress && !o.spec.egress
      ),
      "monitoring has a default-deny NetworkPolicy",
    );

    // Grafana: the repository's provisioning and dashboards, the password from a Secret.
    const grafanaFile = (path: string) => Deno.readTextFile(`${ROOT}deploy/grafana/${path}`);
    const datasources = generated(objects, "grafana-datasources");
    for (const name of ["prometheus.yml", "postgres.yml"]) {
      assert.equal(datasources.data[name], await grafanaFile(`provisioning/datasources/${name}`));
    }
    assert.equal(
      parse(datasources.data["prometheus.yml"]).datasources[0].url,
      "http://prometheus:9090",
      "the Service prometheus in Grafana's namespace",
    );
    assert.ok(objects.some((o) =>
      o.kind === "Service" && o.metadata.namespace === "monitoring" &&
      o.metadata.name === "prometheus"
    ));
    const dashboards = generated(objects, "grafana-dashboards");
    for (const name of ["telemetryhub.json", "telemetryhub-data.json"]) {
      assert.equal(dashboards.data[name], await grafanaFile(`dashboards/${name}`));
    }
    const grafana = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "grafana");
    const env = grafana.spec.template.spec.containers[0].env;
    for (const name of ["GF_SECURITY_ADMIN_PASSWORD", "POSTGRES_PASSWORD"]) {
      const e = env.find((e: { name: string }) => e.name === name);
      assert.equal(e.value, undefined, `${name} is no literal`);
      assert.equal(e.valueFrom.secretKeyRef.name, "grafana-secrets");
    }
  },
});

Deno.test({
  name: "production's Prometheus config passes promtool (discovery swapped for a static target)",
  ignore: KUBECTL_MISSING || await needs("promtool"),
  async fn() {
    const config = generated(await render("overlays/production"), "prometheus-config");
    // Debian's promtool is built without Kubernetes service discovery (it rejects
    // kubernetes_sd_configs as an unknown field), so the job gets a static target in its place:
    // everything else (relabel rules and their regexes, alerting, the rules file) is checked.
    const parsed = parse(config.data["prometheus.yml"]);
    for (const job of parsed.scrape_configs) {
      delete job.kubernetes_sd_configs;
      job.static_configs = [{ targets: ["pod:8080"] }];
    }
    const dir = await Deno.makeTempDir({ prefix: "k8s-prometheus-" });
    try {
      await Deno.writeTextFile(`${dir}/prometheus.yml`, stringify(parsed));
      await Deno.writeTextFile(`${dir}/alerts.yml`, config.data["alerts.yml"]);
      const checked = await run("promtool", ["check", "config", `${dir}/prometheus.yml`]);
      assert.equal(checked.code, 0, checked.output);
      assert.match(checked.output, /1 rule files found/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

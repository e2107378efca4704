/**
 * Container end-to-end test: builds deploy/Dockerfile and the stand-in base images, brings the
 * fleet of compose.yaml up with docker-compose (every service but Grafana, which has no stand-in),
 * and checks what a user relies on: samples posted to the hub over HTTP are all stored in
 * PostgreSQL, Prometheus scrapes all three TelemetryHub processes, an anomaly alert reaches
 * Alertmanager, and a processor SIGKILLed under load loses nothing and stores nothing twice.
 *
 * Slow (minutes) and needs podman, runc, debootstrap and docker-compose as root, so it is not part
 * of `deno task test`: `.ci/run` runs it (`deno task test:containers`) and counts its result.
 *
 * @module
 */
import assert from "node:assert/strict";
import { requireService } from "./_fixtures/services.ts";
import { freePort, hasCommand } from "./_fixtures/tools.ts";
import { waitFor } from "./_fixtures/runtime.ts";
import {
  buildStandins,
  projectContainers,
  projectHealth,
  sh,
  startPodmanService,
  tickHealthChecks,
} from "./_fixtures/containers.ts";
import { dashboards, expandSqlMacros, promqlMetrics, queries } from "./_fixtures/grafana.ts";

const TOOLS = ["podman", "runc", "debootstrap", "docker-compose"];
const HAVE_TOOLS = await requireService(
  TOOLS.join(", ") + " as root",
  () => {
    const missing = TOOLS.filter((t) => !hasCommand(t));
    if (missing.length) throw new Error(`missing ${missing.join(", ")}`);
    if (Deno.uid() !== 0) throw new Error("not root");
  },
  "CI installs them; see .ci/run",
);

const IMAGE = "localhost/telemetryhub:0.1.0";
const SERVICES = ["redis", "postgres", "alertmanager", "hub", "processor-1", "processor-2"];
const ALL = [...SERVICES, "prometheus"];

function secret(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

Deno.test({
  name: "the compose fleet stores every posted sample, is scraped and alerts, and survives a " +
    "processor SIGKILL under load",
  ignore: !HAVE_TOOLS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const started = performance.now();
    const times: Record<string, string> = {};

    let mark = performance.now();
    await buildStandins();
    times["stand-in images (built or kept)"] = seconds(mark);

    mark = performance.now();
    await sh("podman", [
      "build",
      "--pull=never",
      // The default "podman" network reaches no DNS here (see standins/containers.conf).
      "--network",
      "host",
      "--format",
      "docker",
      "-f",
      "deploy/Dockerfile",
      "-t",
      IMAGE,
      ".",
    ]);
    times["image build"] = seconds(mark);
    const size = Number((await sh("podman", ["image", "inspect", "--format", "{{.Size}}", IMAGE]))
      .stdout.trim());
    console.log(`image ${IMAGE}: ${(size / 1e6).toFixed(0)} MB`);

    const project = `telemetryhub-e2e-${secret().slice(0, 8)}`;
    const ports = { hub: freePort(), prometheus: freePort(), alertmanager: freePort() };
    const token = secret();
    const service = await startPodmanService();
    const env = {
      DOCKER_HOST: service.dockerHost,
      COMPOSE_PROJECT_NAME: project,
      TELEMETRY_ADMIN_TOKEN: token,
      POSTGRES_PASSWORD: secret(),
      GRAFANA_ADMIN_PASSWORD: secret(),
      TELEMETRY_HUB_PORT: String(ports.hub),
      TELEMETRY_PROMETHEUS_PORT: String(ports.prometheus),
      TELEMETRY_ALERTMANAGER_PORT: String(ports.alertmanager),
    };
    const compose = (...args: string[]) =>
      sh("docker-compose", ["-f", "compose.yaml", ...args], env);
    const ticking = new AbortController();
    const ticker = tickHealthChecks(project, ticking.signal);
    const hub = `http://127.0.0.1:${ports.hub}`;
    const psql = async (sql: string) => {
      const [pg] = await projectContainers(project, "postgres");
      const out = await sh("podman", [
        "exec",
        pg!,
        "psql",
        "-U",
        "telemetry",
        "-d",
        "telemetry",
        "-tAc",
        sql,
      ]);
      return out.stdout.trim();
    };
    /** Rows stored for `device` and how many distinct samples (seq) they are. */
    const stored = async (device: string) => {
      const out = await psql(
        `SELECT count(*), count(DISTINCT seq) FROM telemetry_data WHERE device = '${device}'`,
      ).catch(() => "0|0"); // the table appears with the first processor's migration
      const [rows, distinct] = out.split("|").map(Number);
      return { rows: rows!, distinct: distinct! };
    };
    let sent = 0; // samples the hub has accepted so far
    /** Posts samples seq from..to-1 of `device`, in bodies of `batch`; retries 503s. */
    const post = async (device: string, from: number, to: number, batch: number, value = 60) => {
      for (let i = from; i < to; i += batch) {
        const body = [];
        for (let seq = i; seq < Math.min(to, i + batch); seq++) {
          body.push({
            device,
            metric: "temperature",
            value: value + (seq % 7),
            ts: Date.now(),
            seq,
          });
        }
        for (;;) {
          const res: Response = await fetch(`${hub}/api/v1/samples?pipeline=factory`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
            body: JSON.stringify(body),
          });
          const text = await res.text();
          if (res.status === 202) {
            sent += body.length;
            break;
          }
          assert.equal(res.status, 503, `POST /api/v1/samples answered ${res.status}: ${text}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };

    /** Runs a step; a failed one ends the test (the later ones need what it checks). */
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!await t.step(name, fn)) throw new Error(`Step failed: ${name}`);
    };
    try {
      await step("the fleet comes up and every service is healthy", async () => {
        mark = performance.now();
        // docker-compose waits for each service_healthy dependency before starting dependents.
        await compose("up", "-d", "--no-build", ...ALL);
        await waitFor(
          async () => {
            const health = await projectHealth(project);
            return ALL.every((s) => health[s] === "healthy");
          },
          "every service healthy",
          300_000,
          1_000,
        ).catch(async (error) => {
          throw new Error(`${error.message}: ${JSON.stringify(await projectHealth(project))}`);
        });
        times["up to healthy"] = seconds(mark);
      });

      const run = secret().slice(0, 6);
      await step("samples posted to the hub are all stored in PostgreSQL, once", async () => {
        const device = `e2e_${run}_posted`;
        await post(device, 0, 2_000, 100);
        await waitFor(async () => (await stored(device)).rows >= 2_000, "2000 rows", 120_000, 500);
        assert.deepEqual(await stored(device), { rows: 2_000, distinct: 2_000 });
        console.log(`posted 2000 samples, stored ${JSON.stringify(await stored(device))}`);
      });

      await step("Prometheus scrapes the hub and both processors", async () => {
        const url = `http://127.0.0.1:${ports.prometheus}/api/v1/targets`;
        let targets: { labels: { instance: string }; health: string }[] = [];
        await waitFor(
          async () => {
            const json = await (await fetch(url)).json();
            targets = json.data.activeTargets;
            return targets.length === 3 && targets.every((x) => x.health === "up");
          },
          "three targets up",
          120_000,
          1_000,
        ).catch((error) => {
          throw new Error(`${error.message}: ${JSON.stringify(targets)}`);
        });
        assert.deepEqual(
          targets.map((x) => x.labels.instance).sort(),
          ["hub:8080", "processor-1:8080", "processor-2:8080"],
        );
      });

      await step("an anomaly alert reaches Alertmanager", async () => {
        const device = `e2e_${run}_hot`;
        // Above the fleet config's 150 °C threshold rule.
        await post(device, 0, 1, 1, 1_000);
        const url = `http://127.0.0.1:${ports.alertmanager}/api/v2/alerts`;
        await waitFor(
          async () => {
            const alerts: { labels: Record<string, string> }[] = await (await fetch(url)).json();
            return alerts.some((a) => a.labels.device === device);
          },
          `an alert for ${device}`,
          120_000,
          1_000,
        );
      });

      await step(
        "every metric the dashboards and alert rules read is in the fleet's scrape",
        async () => {
          const rules = await Deno.readTextFile("deploy/prometheus/alerts.yml");
          const wanted = new Set([
            ...(await dashboards()).flatMap((d) => queries(d)).flatMap((q) =>
              promqlMetrics(q.expr ?? "")
            ),
            ...promqlMetrics(rules),
          ]);
          // Series labelled by device appear with their first event (the anomaly above): poll
          // until Prometheus's next scrape (every 15 s) has them.
          let missing: string[] = [];
          await waitFor(
            async () => {
              const url = `http://127.0.0.1:${ports.prometheus}/api/v1/label/__name__/values`;
              const names = new Set<string>((await (await fetch(url)).json()).data);
              missing = [...wanted].filter((n) => !names.has(n));
              return missing.length === 0;
            },
            "every metric scraped",
            60_000,
            1_000,
          ).catch((error) => {
            throw new Error(`${error.message}; not scraped: ${missing.join(", ")}`);
          });
          console.log(`${wanted.size} metrics of the dashboards and rules are all scraped`);
        },
      );

      await step(
        "every dashboard SQL runs on the fleet's PostgreSQL and shows the samples and anomaly",
        async () => {
          const posted = `e2e_${run}_posted`, hot = `e2e_${run}_hot`;
          const data = (await dashboards()).find((d) => d.file === "telemetryhub-data.json")!;
          const rows: Record<string, number> = {};
          for (const q of queries(data)) {
            const sql = expandSqlMacros(q.rawSql!, {
              device: [posted, hot],
              metric: ["temperature"],
              window: [10_000],
            });
            const out = await psql(sql);
            rows[q.where] = out === "" ? 0 : out.split("\n").length;
          }
          console.log(`dashboard SQL rows: ${JSON.stringify(rows)}`);
          assert.ok(rows['panel "Sensor values (mean per interval)" A']! > 0, "sensor values");
          assert.ok(rows['panel "Anomalies (newest first)" A']! > 0, "anomalies");
          assert.ok(rows['annotation "Anomalies"']! > 0, "anomaly annotations");
        },
      );

      await step(
        "SIGKILL of a processor under load loses nothing and stores nothing twice",
        async () => {
          const device = `e2e_${run}_kill`;
          const total = 40_000, streams = 4, part = (total * 3 / 4) / streams, sentBefore = sent;
          // A quarter first; then four posters send the rest while processor-1 is SIGKILLed.
          await post(device, 0, total / 4, 250);
          const posting = Promise.all(
            Array.from(
              { length: streams },
              (_, i) => post(device, total / 4 + i * part, total / 4 + (i + 1) * part, 100),
            ),
          );
          posting.catch(() => {}); // awaited below; a failure before then is reported there
          const [victim] = await projectContainers(project, "processor-1");
          await sh("podman", ["kill", "--signal", "KILL", victim!]);
          const atKill = { posted: sent - sentBefore, ...await stored(device) };
          await posting;
          console.log(
            `killed processor-1 when ${atKill.posted} of ${total} samples were accepted ` +
              `(${atKill.rows} stored by the time PostgreSQL was asked)`,
          );
          assert.ok(atKill.posted < total, "the kill came while samples were still being posted");
          await waitFor(
            async () => (await stored(device)).rows >= total,
            `${total} rows`,
            180_000,
            500,
          )
            .catch(async (error) => {
              throw new Error(`${error.message}: ${JSON.stringify(await stored(device))}`);
            });
          const after = await stored(device);
          assert.deepEqual(after, { rows: total, distinct: total });
          const state = await sh("podman", [
            "inspect",
            "--format",
            "{{.State.Status}}, restarted {{.RestartCount}} time(s)",
            victim!,
          ]);
          console.log(
            `posted ${total}, stored ${JSON.stringify(after)} after the kill; processor-1 is ` +
              state.stdout.trim(),
          );
        },
      );
    } finally {
      mark = performance.now();
      await compose("down", "--volumes", "--remove-orphans", "--timeout", "20").catch((e) =>
        console.error(`docker-compose down failed: ${e.message}`)
      );
      times["down"] = seconds(mark);
      ticking.abort();
      await ticker;
      await service.close();
      times["total"] = seconds(started);
      console.log(`container e2e times: ${JSON.stringify(times)}`);
    }
  },
});

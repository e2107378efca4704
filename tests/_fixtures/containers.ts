/**
 * TEST INFRASTRUCTURE for the container end-to-end test (tests/container_fleet_e2e.ts): podman as
 * the build machines need it (root, runc, no default ulimits: standins/containers.conf), the
 * stand-in base images (standins/build.sh), podman's Docker-compatible API socket for
 * `docker-compose`, and a health-check ticker.
 *
 * The ticker exists because podman schedules health checks with systemd timers and these machines
 * run no systemd: without it every container would stay `starting` and `depends_on: condition:
 * service_healthy` would never be met. It runs `podman healthcheck run` on the project's
 * containers every `interval`, which is what the systemd timer would do.
 *
 * @module
 */

import { ROOT } from "./cli.ts";

/** The podman settings every podman, podman-service and docker-compose call of a test gets. */
export const CONTAINERS_CONF = `${ROOT}tests/_fixtures/standins/containers.conf`;

/** Output of a command that succeeded. */
export interface Ran {
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd args` with `CONTAINERS_CONF` (and `env`) set; returns its output, or throws with the
 * command line and everything it printed when it exits non-zero.
 */
export async function sh(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Ran> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env: { CONTAINERS_CONF, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const ran = { stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited with ${out.code}:\n${ran.stdout}\n${ran.stderr}`.trim(),
    );
  }
  return ran;
}

/** Builds the stand-in base images that are missing (each once per machine; see build.sh). */
export async function buildStandins(): Promise<void> {
  await sh(`${ROOT}tests/_fixtures/standins/build.sh`, []);
}

/** podman's Docker API on a private socket, started and stopped by this test (by pid). */
export interface PodmanService {
  /** `DOCKER_HOST` for docker-compose. */
  dockerHost: string;
  close(): Promise<void>;
}

/** Starts `podman system service` on a socket in a fresh temporary directory. */
export async function startPodmanService(): Promise<PodmanService> {
  const dir = await Deno.makeTempDir({ prefix: "telemetryhub-podman-" });
  const socket = `${dir}/podman.sock`;
  const child = new Deno.Command("podman", {
    args: ["system", "service", "--time=0", `unix://${socket}`],
    env: { CONTAINERS_CONF },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      const conn = await Deno.connect({ transport: "unix", path: socket });
      conn.close();
      break;
    } catch (error) {
      if (Date.now() > end) {
        child.kill("SIGKILL");
        await child.status;
        throw new Error(`podman system service did not listen on ${socket}`, { cause: error });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    dockerHost: `unix://${socket}`,
    async close() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** IDs of the running containers of compose project `project` (docker-compose's label). */
export async function projectContainers(project: string, service?: string): Promise<string[]> {
  const filters = ["--filter", `label=com.docker.compose.project=${project}`];
  if (service) filters.push("--filter", `label=com.docker.compose.service=${service}`);
  const { stdout } = await sh("podman", ["ps", "-q", "--no-trunc", ...filters]);
  return stdout.split("\n").filter(Boolean);
}

/** The health of each service of `project` by service name ("healthy", "starting", …). */
export async function projectHealth(project: string): Promise<Record<string, string>> {
  const ids = await projectContainers(project);
  if (ids.length === 0) return {};
  const { stdout } = await sh("podman", [
    "inspect",
    "--format",
    '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Health.Status}}',
    ...ids,
  ]);
  return Object.fromEntries(
    stdout.split("\n").filter(Boolean).map((line) => line.split(" ") as [string, string]),
  );
}

/**
 * Runs the project's health checks every `intervalMs` until `signal` aborts (what podman's
 * systemd timers would do; see the module doc). Failures of a check only mark the container.
 */
export async function tickHealthChecks(
  project: string,
  signal: AbortSignal,
  intervalMs = 2_000,
): Promise<void> {
  while (!signal.aborted) {
    const ids = await projectContainers(project).catch(() => []);
    await Promise.all(ids.map((id) => sh("podman", ["healthcheck", "run", id]).catch(() => {})));
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

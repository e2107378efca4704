/**
 * The durable embedded broker survives SIGKILL: `deno task run` under steady
 * HTTP and device load is killed at ten different points and started again;
 * every sample acknowledged (HTTP 202) before a kill is stored exactly once,
 * and the process is ready again quickly. The same with a hub and two
 * processor processes sharing the broker's file.
 *
 * @module
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { collect, ROOT, spawnTask } from "./_fixtures/cli.ts";
import { dropSchema, freshSchema, HAVE_POSTGRES, PG_URL } from "./_fixtures/pg_env.ts";
import { waitFor } from "./_fixtures/runtime.ts";
import { freePort } from "./_fixtures/tools.ts";

const T0 = 1_700_000_000_000;
const ROUNDS = Number(Deno.env.get("CRASH_ROUNDS") ?? 10);

interface Proc {
  child: Deno.ChildProcess;
  stderr: ReturnType<typeof collect>;
  stdout: ReturnType<typeof collect>;
}

async function start(config: string, role: string): Promise<Proc> {
  const child = await spawnTask("run", ["--config", config, "--role", role]);
  return { child, stderr: collect(child.stderr), stdout: collect(child.stdout) };
}

async function dataDir(): Promise<string> {
  await Deno.mkdir(`${ROOT}data`, { recursive: true });
  return `${ROOT}data`;
}

async function ready(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

async function kill(p: Proc, signal: Deno.Signal): Promise<void> {
  try {
    p.child.kill(signal);
  } catch { /* gone */ }
  await p.child.status;
  await p.stdout.done.catch(() => {});
  await p.stderr.done.catch(() => {});
}

/** Posts batches of unique samples until stopped; remembers which ones got a 202. */
/** Sample numbers across every poster of a test file: each sample is unique. */
let nextSample = 0;

function poster(port: number) {
  const acked = new Set<number>();
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const ids = Array.from({ length: 20 }, () => nextSample++);
      const body = JSON.stringify(
        ids.map((i) => ({ device: "http", metric: "t", value: i, ts: T0 + i, seq: i })),
      );
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/samples?pipeline=main`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        await res.body?.cancel();
        if (res.status === 202) { for (const i of ids) acked.add(i); }
      } catch {
        // The process is gone (killed): nothing was acknowledged.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  return {
    acked,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

async function writeConfig(dir: string, schema: string, ports: number[]): Promise<string[]> {
  const common = (port: number) => `
admin: { listen: "127.0.0.1:${port}" }
shutdown: { grace: 5s }
devices:
  line: { type: simulated, config: { rate: 50, metrics: [temperature] } }
brokers:
  local:
    type: sqlite
    config: { path: "${dir}/broker.db", lease: 2s, recover_interval: 200ms }
handlers:
  store: { type: store, config: { url: "${PG_URL}", schema: ${schema} } }
pipelines:
  main:
    from: [line]
    via: local
    handlers: [store]
    batch: { max_samples: 500, max_wait: 20ms }
`;
  const paths: string[] = [];
  for (const [i, port] of ports.entries()) {
    const path = `${dir}/telemetry-${i}.yaml`;
    await Deno.writeTextFile(path, common(port));
    paths.push(path);
  }
  return paths;
}

/** Every acknowledged sample is stored, once. */
async function assertStoredOnce(schema: string, acked: Set<number>): Promise<void> {
  const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
  try {
    let rows: { seq: number; n: number }[] = [];
    await waitFor(
      async () => {
        rows = await sql.unsafe(
          `SELECT seq::int AS seq, count(*)::int AS n FROM "${schema}".telemetry_data
         WHERE device = 'http' GROUP BY seq`,
        );
        const stored = new Set(rows.map((r) => r.seq));
        return [...acked].every((i) => stored.has(i));
      },
      `${acked.size} acknowledged samples stored`,
      60_000,
    );
    assert.deepEqual(rows.filter((r) => r.n !== 1), [], "samples stored twice");
  } finally {
    await sql.end({ timeout: 1 });
  }
}

Deno.test({
  name: `deno task run with the sqlite broker, SIGKILLed at ${ROUNDS} points under load, ` +
    "stores every acknowledged sample exactly once",
  ignore: !HAVE_POSTGRES,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Under ./data: the only place deno task run may write.
    const dir = await Deno.makeTempDir({ dir: await dataDir(), prefix: "crash-" });
    const schema = freshSchema("crash");
    const port = freePort();
    const [config] = await writeConfig(dir, schema, [port]);
    const acked = new Set<number>();
    const resumeMs: number[] = [];
    let proc = await start(config!, "all");
    try {
      await waitFor(() => ready(port), "the first start", 30_000);
      for (let round = 0; round < ROUNDS; round++) {
        const load = poster(port);
        // A different kill point each round: after 100 to 1,000 more acknowledged samples.
        const target = 100 + ((round * 397) % 900);
        await waitFor(() => load.acked.size >= target, `${target} acknowledged`, 30_000);
        await kill(proc, "SIGKILL");
        await load.stop();
        for (const i of load.acked) acked.add(i);
        const restarted = Date.now();
        proc = await start(config!, "all");
        await waitFor(() => ready(port), `restart ${round}`, 30_000);
        resumeMs.push(Date.now() - restarted);
      }
      await assertStoredOnce(schema, acked);
      console.log(
        `${acked.size} samples acknowledged over ${ROUNDS} kills; ready again after ` +
          `${Math.min(...resumeMs)}–${Math.max(...resumeMs)} ms`,
      );
      await kill(proc, "SIGTERM");
      assert.equal((await proc.child.status).code, 0);
    } finally {
      await kill(proc, "SIGKILL");
      await dropSchema(schema);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a hub and two processors sharing the sqlite broker's file lose nothing when each is " +
    "SIGKILLed in turn under load",
  ignore: !HAVE_POSTGRES,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ dir: await dataDir(), prefix: "crash-split-" });
    const schema = freshSchema("crashsplit");
    const ports = [freePort(), freePort(), freePort()];
    const configs = await writeConfig(dir, schema, ports);
    const roles = ["hub", "processor", "processor"];
    const procs = await Promise.all(roles.map((role, i) => start(configs[i]!, role)));
    const acked = new Set<number>();
    try {
      await Promise.all(ports.map((p) => waitFor(() => ready(p), "every process", 30_000)));
      for (let round = 0; round < 3; round++) {
        const load = poster(ports[0]!);
        await waitFor(() => load.acked.size >= 300 + round * 100, "acknowledged", 30_000);
        // Kill one process (the hub, then each processor) and start it again.
        const victim = round;
        await kill(procs[victim]!, "SIGKILL");
        if (victim === 0) await load.stop();
        procs[victim] = await start(configs[victim]!, roles[victim]!);
        await waitFor(() => ready(ports[victim]!), `${roles[victim]} again`, 30_000);
        if (victim !== 0) {
          await waitFor(() => load.acked.size >= 600 + round * 100, "more acknowledged", 30_000);
          await load.stop();
        }
        for (const i of load.acked) acked.add(i);
      }
      await assertStoredOnce(schema, acked);
      console.log(`${acked.size} samples acknowledged through a hub and two processors`);
      for (const p of procs) await kill(p, "SIGTERM");
    } finally {
      for (const p of procs) await kill(p, "SIGKILL");
      await dropSchema(schema);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

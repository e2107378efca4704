/**
 * `threads:` through the CLI, with exactly the permissions of `deno task run`:
 * the embedded role on the default SQLite broker runs its handler chain in
 * two isolates; every sample is handled once, a thread that crashes while it
 * holds a task loses nothing, SIGTERM drains every thread, and /metrics and
 * /readyz cover all of them. Samples are counted in Redis, which every
 * isolate reaches.
 *
 * @module
 */
import assert from "node:assert/strict";
import { collect, ROOT, spawnTask } from "./_fixtures/cli.ts";
import { counts } from "./_fixtures/redis_fleet.ts";
import { client, deleteKeys, HAVE_REDIS, randomPrefix } from "./_fixtures/redis_server.ts";

const FIXTURES = new URL("./_fixtures/", import.meta.url).href;

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_REDIS, fn, sanitizeOps: false, sanitizeResources: false });

interface Setup {
  prefix: string;
  samples: number;
  /** Handlers before `count` in the chain. */
  before?: string[];
}

/** Writes the configuration; its broker file lives under ./data (what `run` may write). */
async function writeConfig(o: Setup): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "th-threads-" });
  const data = `data/${o.prefix.replaceAll(":", "-")}`;
  const path = `${dir}/telemetry.yaml`;
  await Deno.writeTextFile(
    path,
    `
plugins:
  - ${FIXTURES}redis_fixed_device.ts
  - ${FIXTURES}redis_count.ts
  - ${FIXTURES}thread_crash.ts
log: { level: info, format: json }
admin: { listen: "127.0.0.1:0" }
threads: 2
shutdown: { grace: 5s }
devices:
  dev:
    type: fixed
    config: { count: ${o.samples}, batch: 10, every: 2ms }
brokers:
  local:
    type: sqlite
    config: { path: ./${data}/broker.db, recover_interval: 200ms }
handlers:
  crash:
    type: thread_crash
    config: { key: "${o.prefix}:crashed" }
  count:
    type: redis_count
    config: { key: "${o.prefix}:count", delay: "\${DELAY:-20ms}" }
pipelines:
  main:
    from: [dev]
    via: local
    handlers: [${[...o.before ?? [], "count"].join(", ")}]
    batch: { max_samples: 10, max_wait: 20ms }
    workers: 2
    prefetch: 1
`,
  );
  return {
    path,
    cleanup: async () => {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(`${ROOT}${data}`, { recursive: true }).catch(() => {});
      await deleteKeys(o.prefix);
    },
  };
}

interface Run {
  stdout(): string;
  stderr(): string;
  /** The admin API's base URL, once it listens. */
  admin(): Promise<string>;
  /** Sends a signal (SIGHUP reloads). */
  signal(name: Deno.Signal): void;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number>;
}

async function run(path: string, extra: string[] = [], env: Record<string, string> = {}) {
  const child = await spawnTask("run", ["--config", path, ...extra], { env });
  const out = collect(child.stdout);
  const err = collect(child.stderr);
  const r: Run = {
    stdout: out.text,
    stderr: err.text,
    async admin() {
      let address: RegExpExecArray | null = null;
      await waitFor(
        () => (address = /"Admin API listening","address":"([^"]+)"/.exec(err.text())) !== null,
        "the admin API",
        r,
      );
      return `http://${address![1]}`;
    },
    signal(name) {
      child.kill(name);
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      const status = await child.status;
      await Promise.all([out.done, err.done]);
      return status.code;
    },
  };
  return r;
}

async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  r: Run,
  timeoutMs = 30_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!await condition()) {
    if (Date.now() > end) {
      throw new Error(`Timed out waiting for ${what}\n${r.stderr().slice(-4000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function hash(key: string): Promise<Record<string, string>> {
  const redis = client();
  try {
    return await redis.hgetall(key);
  } finally {
    redis.disconnect();
  }
}

/** The value of one series in a Prometheus text exposition, or undefined. */
function series(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

async function metrics(base: string): Promise<string> {
  return await (await fetch(`${base}/metrics`)).text();
}

async function readiness(base: string): Promise<{ ready: boolean; checks: { name: string }[] }> {
  return await (await fetch(`${base}/readyz`)).json();
}

test("threads: 2 handles every sample once across two isolates; /metrics and /readyz cover both", async () => {
  const prefix = randomPrefix("threads");
  const samples = 2000;
  const { path, cleanup } = await writeConfig({ prefix, samples });
  const r = await run(path);
  try {
    const base = await r.admin();
    await waitFor(async () => (await counts(prefix)).size >= samples, "every sample", r);
    const seen = await counts(prefix);
    assert.equal(seen.size, samples);
    assert.deepEqual([...seen].filter(([, n]) => n !== 1), [], "every sample handled once");
    const isolates = await hash(`${prefix}:count:isolates`);
    assert.ok(Number(isolates["main"]) > 0, `main isolate took tasks: ${JSON.stringify(isolates)}`);
    assert.ok(
      Number(isolates["telemetry-thread-1"]) > 0,
      `thread 1 took tasks: ${JSON.stringify(isolates)}`,
    );
    // Counted by the main isolate and the thread in their own registries, summed in one scrape.
    const processed = 'telemetry_samples_processed_total{pipeline="main"}';
    await waitFor(async () => series(await metrics(base), processed) === samples, processed, r);
    const completed = 'telemetry_tasks_total{pipeline="main",type="telemetry.analyze",' +
      'outcome="completed"}';
    const tasks = Number(isolates["main"]) + Number(isolates["telemetry-thread-1"]);
    assert.equal(series(await metrics(base), completed), tasks);
    const ready = await readiness(base);
    assert.equal(ready.ready, true, JSON.stringify(ready));
    assert.ok(ready.checks.some((c) => c.name === "thread:1"), JSON.stringify(ready));
    assert.equal(await r.stop(), 0);
    assert.match(
      r.stdout(),
      new RegExp(`Stopped after .*: ${samples} samples read, ${tasks} tasks`),
    );
  } finally {
    await r.stop();
    await cleanup();
  }
});

test("threads: a thread that crashes holding a task is restarted and the task is not lost", async () => {
  const prefix = randomPrefix("threads-crash");
  const samples = 1000;
  const { path, cleanup } = await writeConfig({ prefix, samples, before: ["crash"] });
  const r = await run(path);
  try {
    const base = await r.admin();
    await waitFor(async () => (await counts(prefix)).size >= samples, "every sample", r);
    const redis = client();
    try {
      assert.equal(await redis.get(`${prefix}:crashed`), "crashed", "thread 1 crashed");
    } finally {
      redis.disconnect();
    }
    const seen = await counts(prefix);
    assert.equal(seen.size, samples);
    // The held task was never counted by the crashed thread: redelivered, it is counted once.
    assert.deepEqual([...seen].filter(([, n]) => n !== 1), [], "every sample handled once");
    assert.match(r.stderr(), /Thread stopped unexpectedly.*Thread crashed on purpose/);
    assert.equal(
      series(await metrics(base), 'telemetry_thread_restarts_total{thread="1"}'),
      1,
    );
    await waitFor(async () => (await readiness(base)).ready, "thread 1 ready again", r);
    assert.equal(await r.stop(), 0);
  } finally {
    await r.stop();
    await cleanup();
  }
});

test("threads: SIGTERM drains every thread; what was queued is handled once by the next run", async () => {
  const prefix = randomPrefix("threads-term");
  const samples = 1000;
  const { path, cleanup } = await writeConfig({ prefix, samples });
  const env = { DELAY: "150ms" };
  const first = await run(path, [], env);
  let second: Run | undefined;
  try {
    await first.admin();
    // Both isolates are working through tasks when the signal comes.
    await waitFor(
      async () => Object.keys(await hash(`${prefix}:count:isolates`)).length === 2,
      "both isolates busy",
      first,
    );
    assert.equal(await first.stop(), 0);
    const summary = /Stopped after .*: (\d+) samples read/.exec(first.stdout());
    assert.ok(summary, first.stdout() + first.stderr());
    const read = Number(summary[1]);
    assert.doesNotMatch(first.stderr(), /did not stop within the grace period|abandoned/);
    assert.match(first.stderr(), /"msg":"Thread stopped","thread":1/);
    // The queue keeps what the first run accepted but did not handle: a processor finishes it.
    second = await run(path, ["--role", "processor"], { DELAY: "0ms" });
    await waitFor(async () => (await counts(prefix)).size >= read, "the rest of the queue", second);
    const seen = await counts(prefix);
    assert.equal(seen.size, read);
    assert.deepEqual([...seen].filter(([, n]) => n !== 1), [], "every sample handled once");
    assert.equal(await second.stop(), 0);
  } finally {
    await first.stop();
    await second?.stop();
    await cleanup();
  }
});

test("threads: a reload that changes threads: restarts the threads only; no sample lost or repeated", async () => {
  const prefix = randomPrefix("threads-reload");
  const samples = 2000;
  const { path, cleanup } = await writeConfig({ prefix, samples });
  const r = await run(path);
  try {
    await r.admin();
    await waitFor(
      async () => Number((await hash(`${prefix}:count:isolates`))["telemetry-thread-1"]) > 5,
      "thread 1 at work",
      r,
    );
    // Only the threads change: the pipeline (and its device, which would emit its samples
    // again) keeps running on the main isolate.
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.replace("threads: 2", "threads: 3"));
    r.signal("SIGHUP");
    await waitFor(() => /"msg":"Reloaded"/.test(r.stderr()), "the reload", r);
    await waitFor(async () => (await counts(prefix)).size >= samples, "every sample", r);
    const seen = await counts(prefix);
    assert.equal(seen.size, samples);
    assert.deepEqual([...seen].filter(([, n]) => n !== 1), [], "every sample handled once");
    const err = r.stderr();
    assert.match(err, /"msg":"Thread stopped","thread":1/, "the old thread drained");
    assert.equal(err.match(/"msg":"Started","thread":1/g)?.length, 2, "thread 1 started again");
    assert.match(err, /"msg":"Reloaded","restarted":\[\],"unchanged":\["main"\]/);
    await waitFor(() => /"msg":"Started","thread":2/.test(r.stderr()), "thread 2 started", r);
    assert.equal(await r.stop(), 0);
    assert.match(r.stdout(), new RegExp(`Stopped after .*: ${samples} samples read`));
  } finally {
    await r.stop();
    await cleanup();
  }
});

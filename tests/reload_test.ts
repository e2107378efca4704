import assert from "node:assert/strict";
import { loadConfigText } from "../core/config/mod.ts";
import { collect, spawnTask } from "./_fixtures/cli.ts";
import { recording, recordings } from "./_fixtures/plugins.ts";
import { createRuntime, testRegistry, waitFor } from "./_fixtures/runtime.ts";

function yaml(slowDelay: string, extra = ""): string {
  return `
devices:
  a: { type: fixed, config: { count: 1000000, batch: 20, every: 2ms } }
  b: { type: fixed, config: { count: 1000000, batch: 20, every: 2ms } }
brokers:
  mem: { type: memory }
handlers:
  rec_a: { type: record, config: { key: reload_a } }
  rec_b: { type: record, config: { key: reload_b, delay: ${slowDelay} } }
pipelines:
  pa: { from: [a], via: mem, handlers: [rec_a], batch: { max_samples: 20, max_wait: 2ms } }
  pb: { from: [b], via: mem, handlers: [rec_b], batch: { max_samples: 20, max_wait: 2ms } }
${extra}`;
}

Deno.test("reload restarts only the changed pipeline and loses no in-flight task", async () => {
  recordings.clear();
  const { runtime } = await createRuntime(yaml("20ms"));
  runtime.start();
  await waitFor(() => recording("reload_b").seen.length >= 100, "pipeline pb running");
  const runnerA = runtime.pipelines.get("pa")!.devices[0]!;
  const poolB = runtime.pipelines.get("pb")!.pool!;
  const next = await loadConfigText(yaml("1ms"), {
    file: "test.yaml",
    registry: testRegistry(),
    env: {},
  });
  const report = await runtime.reload(next);
  assert.deepEqual(report, { restarted: ["pb"], unchanged: ["pa"], removed: [] });
  assert.equal(runtime.pipelines.get("pa")!.devices[0], runnerA, "pa untouched");
  assert.notEqual(runtime.pipelines.get("pb")!.pool, poolB, "pb rebuilt");
  assert.equal(runtime.config.handlers.rec_b!.config.delay, 1);
  const before = recording("reload_b").seen.length;
  await waitFor(() => recording("reload_b").seen.length > before + 100, "pb running again");
  const summary = await runtime.stop();
  const seenA = recording("reload_a").seen;
  const seenB = recording("reload_b").seen;
  assert.equal(new Set(seenA).size, seenA.length, "no sample of pa twice");
  assert.ok(seenA.every((s) => s.startsWith("a/")), "pa's chain saw only pa's samples");
  assert.ok(seenB.every((s) => s.startsWith("b/")), "pb's tasks waited for pb to restart");
  // pb's device restarted from seq 0, so seq repeats across the restart; count instead.
  assert.equal(seenA.length + seenB.length, summary.samples_read, "every sample read was handled");
  assert.equal(summary.samples_dropped, 0);
  assert.equal(summary.tasks_abandoned, 0);
});

Deno.test("reload removes a pipeline and closes what it alone used", async () => {
  recordings.clear();
  const { runtime } = await createRuntime(yaml("0ms"));
  runtime.start();
  const next = await loadConfigText(
    `
devices:
  a: { type: fixed, config: { count: 1000000, batch: 20, every: 2ms } }
brokers:
  mem: { type: memory }
handlers:
  rec_a: { type: record, config: { key: reload_a } }
pipelines:
  pa: { from: [a], via: mem, handlers: [rec_a], batch: { max_samples: 20, max_wait: 2ms } }
`,
    { file: "test.yaml", registry: testRegistry(), env: {} },
  );
  const report = await runtime.reload(next);
  assert.deepEqual(report, { restarted: [], unchanged: ["pa"], removed: ["pb"] });
  assert.deepEqual([...runtime.handlers.keys()], ["rec_a"]);
  assert.equal(runtime.pipelineOf("b"), undefined);
  await runtime.stop();
});

const FILE_YAML = (rate: number) => `
admin: { listen: "127.0.0.1:0" }
devices:
  sim: { type: simulated, config: { rate: ${rate}, tick: 20ms } }
brokers:
  mem: { type: memory }
handlers:
  sink: { type: discard }
pipelines:
  main: { from: [sim], via: mem, handlers: [sink], batch: { max_samples: 50, max_wait: 20ms } }
`;

/**
 * Writes `files` into a fresh directory, runs `telemetry.yaml` there as a
 * real process, gives `body` its API address, then stops it with SIGTERM and
 * checks it exits 0 with nothing dropped.
 */
async function withRunningProcess(
  files: Record<string, string>,
  body: (p: {
    api: string;
    dir: string;
    file: string;
    child: Deno.ChildProcess;
    stderr: ReturnType<typeof collect>;
  }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/telemetry.yaml`;
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const child = await spawnTask("run", ["--config", file]);
  const stdout = collect(child.stdout);
  const stderr = collect(child.stderr);
  try {
    await waitFor(() => stderr.text().includes('"msg":"Admin API listening"'), "admin", 30_000);
    const address = stderr.text().match(/"address":"([^"]+)"/)![1];
    await body({ api: `http://${address}/api/v1`, dir, file, child, stderr });
  } finally {
    child.kill("SIGTERM");
  }
  const code = (await child.status).code;
  const out = await stdout.done;
  await stderr.done;
  assert.equal(code, 0, out);
  assert.match(out, /0 samples dropped/);
  await Deno.remove(dir, { recursive: true });
}

Deno.test("an invalid file is refused on reload (HTTP and SIGHUP) and the pipeline keeps running", async () => {
  await withRunningProcess(
    { "telemetry.yaml": FILE_YAML(100) },
    async ({ api, file, child, stderr }) => {
      const status = async () => (await (await fetch(`${api}/status`)).json()).pipelines[0];

      await Deno.writeTextFile(file, FILE_YAML(100).replace("max_wait: 20ms", "max_wat: 20ms"));
      const refused = await fetch(`${api}/reload`, { method: "POST" });
      assert.equal(refused.status, 422);
      const body = await refused.json();
      assert.equal(body.reloaded, false);
      assert.match(
        body.problems[0],
        /telemetry\.yaml:\d+:\d+ pipelines\.main\.batch\.max_wat: Unknown key "max_wat"; did you mean "max_wait"\?/,
      );
      const read = (await status()).totals.samples_read;
      await waitFor(
        async () => (await status()).totals.samples_read > read,
        "samples still flowing",
      );

      // The HTTP refusal logged one line already; SIGHUP must add a second.
      const refusals = () => stderr.text().split("Reload refused").length - 1;
      await waitFor(() => refusals() === 1, "the HTTP refusal logged");
      child.kill("SIGHUP");
      await waitFor(() => refusals() === 2, "SIGHUP refusal logged");

      await Deno.writeTextFile(file, FILE_YAML(200));
      const applied = await fetch(`${api}/reload`, { method: "POST" });
      assert.equal(applied.status, 200);
      assert.deepEqual(await applied.json(), {
        reloaded: true,
        restarted: ["main"],
        unchanged: [],
      });
      const config = await (await fetch(`${api}/config`)).json();
      assert.equal(config.devices.sim.config.rate, 200);
    },
  );
});

const PLUGIN_YAML = `
admin: { listen: "127.0.0.1:0" }
plugins: [./stamp.ts]
devices:
  sim: { type: simulated, config: { rate: 100, tick: 20ms } }
brokers:
  mem: { type: memory }
handlers:
  stamp: { type: stamp }
  sink: { type: discard }
pipelines:
  main: { from: [sim], via: mem, handlers: [stamp, sink], batch: { max_samples: 50, max_wait: 20ms } }
`;

/** A third-party handler that sets every value to `value`. */
const stampPlugin = (value: number) => `
import { defineHandler, z } from "${new URL("../core/mod.ts", import.meta.url).href}";
export default defineHandler({
  name: "stamp",
  summary: "Sets every value to ${value} (tests)",
  config: z.strictObject({}),
  create: () => ({ handle: (samples) => samples.map((s) => ({ ...s, value: ${value} })) }),
});
`;

/** The values the tap shows after handler `handler`, read until `done` says so. */
async function tapValues(api: string, handler: string, done: (values: number[]) => boolean) {
  const controller = new AbortController();
  const res = await fetch(`${api}/tap?handler=${handler}`, { signal: controller.signal });
  assert.equal(res.status, 200);
  const values: number[] = [];
  const decoder = new TextDecoder();
  let text = "";
  const deadline = setTimeout(() => controller.abort(), 20_000);
  try {
    for await (const chunk of res.body!) {
      text += decoder.decode(chunk);
      for (const m of text.matchAll(/^data: (\{"stage".*)$/gm)) {
        values.push(...JSON.parse(m[1]!).samples.map((s: { value: number }) => s.value));
      }
      text = text.slice(text.lastIndexOf("\n\n") + 2);
      if (done(values)) break;
    }
  } finally {
    clearTimeout(deadline);
    controller.abort();
  }
  return values;
}

Deno.test("reload imports a changed plugin module afresh and restarts what uses it", async () => {
  const files = { "telemetry.yaml": PLUGIN_YAML, "stamp.ts": stampPlugin(1) };
  await withRunningProcess(files, async ({ api, dir }) => {
    assert.deepEqual(new Set(await tapValues(api, "stamp", (v) => v.length >= 5)), new Set([1]));

    // Unchanged code and settings: nothing restarts.
    const same = await fetch(`${api}/reload`, { method: "POST" });
    assert.deepEqual(await same.json(), { reloaded: true, restarted: [], unchanged: ["main"] });

    await Deno.writeTextFile(`${dir}/stamp.ts`, stampPlugin(2));
    const applied = await fetch(`${api}/reload`, { method: "POST" });
    assert.deepEqual(await applied.json(), { reloaded: true, restarted: ["main"], unchanged: [] });
    const after = await tapValues(api, "stamp", (v) => v.length >= 5);
    assert.deepEqual(new Set(after), new Set([2]), "the new code runs");

    // A version that does not parse is refused, positioned, and the running one keeps running.
    await Deno.writeTextFile(`${dir}/stamp.ts`, stampPlugin(3).replace("summary:", "summary"));
    const refused = await fetch(`${api}/reload`, { method: "POST" });
    assert.equal(refused.status, 422);
    assert.match((await refused.json()).problems[0], /stamp\.ts:\d+:\d+: SyntaxError/);
    assert.deepEqual(new Set(await tapValues(api, "stamp", (v) => v.length >= 5)), new Set([2]));

    // Back to the first version: the module cache still has it, and it runs again.
    await Deno.writeTextFile(`${dir}/stamp.ts`, stampPlugin(1));
    const back = await fetch(`${api}/reload`, { method: "POST" });
    assert.deepEqual(await back.json(), { reloaded: true, restarted: ["main"], unchanged: [] });
    assert.deepEqual(new Set(await tapValues(api, "stamp", (v) => v.length >= 5)), new Set([1]));
  });
});

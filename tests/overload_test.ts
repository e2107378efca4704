/**
 * Overload: a real `deno task run` process whose chain is slower than what
 * HTTP clients send. Memory stays bounded (every queue has a capacity and
 * overload becomes 503 with Retry-After), and every sample acknowledged
 * with 202 is processed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { collect, ROOT, spawnTask } from "./_fixtures/cli.ts";
import { waitFor } from "./_fixtures/runtime.ts";
import { freePort } from "./_fixtures/tools.ts";

/** The documented bound (README, "Overload"): RSS of the default memory broker under overload. */
const RSS_LIMIT_MB = 400;
/** V8's old space for the process under test, as the README suggests for small machines. */
const HEAP_MB = 192;
const SECONDS = Number(Deno.env.get("OVERLOAD_SECONDS") ?? 60);
const REQUESTS_PER_SECOND = 2000;
const SAMPLES_PER_REQUEST = 100;
const MAX_IN_FLIGHT = 64;

/** Resident memory of `pid` in MB, from ps (reading /proc/<pid> needs --allow-all in Deno). */
async function rssMb(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).output();
  return Number(new TextDecoder().decode(out.stdout).trim() || 0) / 1024;
}

async function processed(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = /^telemetry_samples_processed_total\{pipeline="main"\} (\d+)/m.exec(text);
  return Number(m?.[1] ?? 0);
}

Deno.test({
  name:
    `2,000 req/s × 100 samples for ${SECONDS}s against a slow chain: bounded RSS, 503s, nothing acknowledged lost`,
  sanitizeResources: false,
  async fn() {
    const port = freePort();
    const dir = await Deno.makeTempDir();
    const config = `${dir}/overload.yaml`;
    await Deno.writeTextFile(
      config,
      `
plugins:
  - ${ROOT}tests/_fixtures/slow_plugin/plugin.ts
admin: { listen: "127.0.0.1:${port}" }
brokers:
  mem: { type: memory }
handlers:
  slow: { type: slow, config: { per_task: 100ms } }
pipelines:
  main:
    via: mem
    handlers: [slow]
    workers: 2
`,
    );
    // A capped heap: V8 otherwise grows it lazily towards a limit taken from the machine's
    // memory, so RSS would say more about the GC than about our queues. A leak would now end
    // the process (out of memory) instead of passing unnoticed.
    const child = await spawnTask("run", ["--config", config], {
      env: { DENO_V8_FLAGS: `--max-old-space-size=${HEAP_MB}` },
    });
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    try {
      await waitFor(
        async () => {
          try {
            return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
          } catch {
            return false;
          }
        },
        "the admin API",
        30_000,
      );
      const body = JSON.stringify(
        Array.from({ length: SAMPLES_PER_REQUEST }, (_, i) => ({
          device: "load",
          metric: "t",
          value: i,
        })),
      );
      const statuses = new Map<number, number>();
      let retryAfter = true;
      let inFlight = 0;
      let skipped = 0;
      let maxRss = 0;
      let lastRss = 0;
      const rssBySecond = new Map<number, number>();
      const send = async () => {
        inFlight++;
        try {
          const res = await fetch(`http://127.0.0.1:${port}/api/v1/samples?pipeline=main`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
          });
          await res.body?.cancel();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status === 503 && res.headers.get("retry-after") === null) retryAfter = false;
        } finally {
          inFlight--;
        }
      };
      const started = Date.now();
      const pending: Promise<void>[] = [];
      let sent = 0;
      while (Date.now() - started < SECONDS * 1000) {
        const due = Math.floor(((Date.now() - started) / 1000) * REQUESTS_PER_SECOND);
        while (sent < due) {
          sent++;
          if (inFlight >= MAX_IN_FLIGHT) {
            skipped++;
            continue;
          }
          pending.push(send());
        }
        if (Date.now() - lastRss >= 250) {
          lastRss = Date.now();
          const rss = await rssMb(child.pid);
          maxRss = Math.max(maxRss, rss);
          const second = Math.floor((Date.now() - started) / 10_000) * 10;
          if (!rssBySecond.has(second)) rssBySecond.set(second, Math.round(rss));
        }
        await new Promise((r) => setTimeout(r, 5));
        if (pending.length > 10_000) pending.splice(0, pending.length - MAX_IN_FLIGHT);
      }
      await Promise.all(pending);
      const accepted = (statuses.get(202) ?? 0) * SAMPLES_PER_REQUEST;
      console.log(
        `offered ${sent} requests (${skipped} not sent: ${MAX_IN_FLIGHT} in flight), ` +
          `statuses ${JSON.stringify(Object.fromEntries(statuses))}, ` +
          `max RSS ${maxRss.toFixed(0)} MB; every 10 s: ${[...rssBySecond.values()].join(", ")} MB`,
      );
      assert.ok((statuses.get(503) ?? 0) > 0, "overload answered 503");
      assert.ok(retryAfter, "every 503 carries Retry-After");
      assert.deepEqual([...statuses.keys()].filter((s) => s !== 202 && s !== 503), []);
      assert.ok(
        maxRss < RSS_LIMIT_MB,
        `RSS ${maxRss.toFixed(0)} MB stays under ${RSS_LIMIT_MB} MB`,
      );
      await waitFor(
        async () => (await processed(port)) >= accepted,
        "every acknowledged sample processed",
        60_000,
      );
      assert.equal(await processed(port), accepted, "each acknowledged sample processed once");
      child.kill("SIGTERM");
      const { code } = await child.status;
      assert.equal(code, 0, await stderr.done);
      const summary = /(\d+) samples read, .* (\d+) samples dropped/.exec(await stderr.done) ??
        /(\d+) samples read, .* (\d+) samples dropped/.exec(await stdout.done);
      assert.ok(summary, "the summary line");
      assert.equal(Number(summary[1]), accepted);
      assert.equal(Number(summary[2]), 0);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await stdout.done.catch(() => {});
      await stderr.done.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});

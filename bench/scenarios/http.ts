/**
 * Scenarios `http-single`, `http-batch` and `http-latency`: load on
 * `POST /api/v1/samples` from a second process on loopback, into the
 * embedded pipeline (memory broker, discard handler). Throughput uses `wrk`
 * (Debian package `wrk`); latency at a fixed 10,000 requests/s uses the
 * paced generator in `bench/_loadgen.ts`.
 *
 * @module
 */
import { createAdminApp } from "../../core/admin/app.ts";
import { BUILTIN_PLUGINS } from "../../cli/builtins.ts";
import { loadConfigText } from "../../core/config/mod.ts";
import { createLogger } from "../../core/log.ts";
import { PluginRegistry } from "../../core/registry.ts";
import { Runtime } from "../../core/runtime/runtime.ts";
import { type BenchResult, machine } from "../_harness.ts";

const CONFIG = `
log: { level: warn }
admin: { max_body: 10485760 }
devices:
  press: { type: simulated, config: { rate: 0.001 } }
brokers:
  mem: { type: memory }
handlers:
  sink: { type: discard }
pipelines:
  ingest:
    from: [press]
    via: mem
    handlers: [sink]
    batch: { max_samples: 1000, max_wait: 5ms }
    hub_queue: { capacity: 1000000, overflow: block }
    workers: 2
`;

function body(samples: number): string {
  const now = Date.now();
  const list = Array.from({ length: samples }, (_, i) => ({
    device: "press",
    metric: "pressure",
    value: 101.3 + i / 1000,
    ts: now,
  }));
  return JSON.stringify(samples === 1 ? list[0] : list);
}

async function withServer<T>(
  fn: (url: string, runtime: Runtime) => Promise<T>,
): Promise<T> {
  const registry = PluginRegistry.of(BUILTIN_PLUGINS);
  const loaded = await loadConfigText(CONFIG, {
    file: "http.yaml",
    registry,
    env: {},
  });
  const runtime = await Runtime.create(loaded, {
    logger: createLogger({ level: "warn" }),
  });
  const app = createAdminApp(runtime, {
    registry,
    redactedConfig: () => loaded.redacted,
    version: "bench",
  });
  runtime.start();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  try {
    return await fn(
      `http://127.0.0.1:${server.addr.port}/api/v1/samples`,
      runtime,
    );
  } finally {
    await server.shutdown();
    await runtime.stop();
  }
}

/** A scratch folder under ./data (the bench task may write only there and in results). */
async function benchTempDir(): Promise<string> {
  await Deno.mkdir("data", { recursive: true });
  return await Deno.makeTempDir({ dir: "data", prefix: "bench-http-" });
}

function ms(text: string): number {
  const m = text.match(/([\d.]+)(us|ms|s)/);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

async function wrk(
  url: string,
  bodyText: string,
  seconds: number,
  connections: number,
) {
  const dir = await benchTempDir();
  const script = `${dir}/post.lua`;
  await Deno.writeTextFile(
    script,
    `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ${
      JSON.stringify(bodyText)
    }\n`,
  );
  let out;
  try {
    out = await new Deno.Command("wrk", {
      args: [
        "-t1",
        `-c${connections}`,
        `-d${seconds}s`,
        "--latency",
        "-s",
        script,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new Error("The http scenarios need wrk: apt-get install wrk", {
      cause: error,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(text.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
  const non2xx = Number(
    text.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0,
  );
  const p50 = ms(text.match(/\s50%\s+(\S+)/)?.[1] ?? "");
  const p99 = ms(text.match(/\s99%\s+(\S+)/)?.[1] ?? "");
  const max = ms(text.match(/Latency\s+\S+\s+\S+\s+(\S+)/)?.[1] ?? "");
  return { rps, non2xx, p50, p99, max, raw: text };
}

async function throughput(
  scenario: string,
  samplesPerRequest: number,
): Promise<BenchResult> {
  return await withServer(async (url, runtime) => {
    const seconds = 10;
    const result = await wrk(url, body(samplesPerRequest), seconds, 64);
    const totals = runtime.metrics.totals("ingest");
    return {
      scenario,
      description: `POST /api/v1/samples with ${samplesPerRequest} sample(s) per request, wrk -c64`,
      samples_per_second: result.rps * samplesPerRequest,
      latency_ms: { p50: result.p50, p99: result.p99, max: result.max },
      offered_per_second: null,
      duration_s: seconds,
      samples: totals.samples_read,
      ...machine(),
      extra: {
        requests_per_second: Math.round(result.rps),
        non_2xx: result.non2xx,
        latency_is: "request latency (wrk)",
        samples_processed: totals.samples_processed,
      },
    };
  });
}

/** `http-single`: one sample per request. */
export function httpSingle(): Promise<BenchResult> {
  return throughput("http-single", 1);
}

/** `http-batch`: 100 samples per request. */
export function httpBatch(): Promise<BenchResult> {
  return throughput("http-batch", 100);
}

/**
 * `http-latency`: request latency at 10,000 single-sample requests/s,
 * paced by autocannon (Node.js, `bench/tools/package.json`; installed on first use).
 */
export function httpLatency(): Promise<BenchResult> {
  return withServer(async (url) => {
    const rate = 10_000;
    const seconds = 10;
    const benchDir = new URL("../tools/", import.meta.url).pathname;
    const tool = `${benchDir}node_modules/autocannon/autocannon.js`;
    try {
      await Deno.stat(tool);
    } catch {
      const npm = await new Deno.Command("npm", {
        args: ["ci", "--no-audit", "--no-fund"],
        cwd: benchDir,
        stdout: "null",
      }).output();
      if (!npm.success) {
        throw new Error("Cannot install autocannon: run npm ci in bench/tools/");
      }
    }
    const out = await new Deno.Command("node", {
      args: [
        tool,
        "-c",
        "32",
        "-R",
        String(rate),
        "-d",
        String(seconds),
        "-m",
        "POST",
        "-H",
        "content-type=application/json",
        "-b",
        body(1),
        "--json",
        url,
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    return {
      scenario: "http-latency",
      description: "POST /api/v1/samples, one sample each, paced at 10,000 requests/s (autocannon)",
      samples_per_second: r.requests.average,
      latency_ms: {
        p50: r.latency.p50,
        p99: r.latency.p99,
        max: r.latency.max,
      },
      offered_per_second: rate,
      duration_s: seconds,
      samples: r.requests.total,
      ...machine(),
      extra: {
        non_2xx: r.non2xx,
        errors: r.errors,
        latency_is: "request latency (autocannon, 1 ms resolution)",
      },
    };
  });
}

/**
 * Fixtures of the hardware device tests (serial, I2C, SPI, driver host): a
 * real pseudo-terminal pair made by `socat` (bytes written to `a` come out
 * of `b` and back; stopped by its pid), and a runtime around given devices
 * that records what enters the pipeline.
 *
 * @module
 */
import { requireService } from "./services.ts";
import type { Sample } from "../../core/mod.ts";
import type { Runtime } from "../../core/runtime/runtime.ts";
import { hostPackagesInstalled } from "../../plugins/_driver_host/mod.ts";
import { recordings } from "./plugins.ts";
import { createRuntime, waitFor } from "./runtime.ts";

/** A running socat pty pair. */
export interface PtyPair {
  /** The test's end. */
  a: string;
  /** The end the device opens. */
  b: string;
  pid: number;
  /** Kills socat (the links disappear) and waits for it. */
  stop(): Promise<void>;
}

/** Starts `socat` with two linked ptys at `<dir>/A` and `<dir>/B`. */
export async function startPtyPair(dir: string): Promise<PtyPair> {
  const a = `${dir}/A`;
  const b = `${dir}/B`;
  const child = new Deno.Command("socat", {
    args: ["-d", "-d", `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const exists = async (p: string) => {
    try {
      await Deno.stat(p);
      return true;
    } catch {
      return false;
    }
  };
  await waitFor(
    async () => await exists(a) && await exists(b),
    "socat pty links",
    5000,
  );
  let stopped: Promise<void> | undefined;
  return {
    a,
    b,
    pid: child.pid,
    stop() {
      stopped ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        await child.status;
        await waitFor(
          async () => !await exists(a),
          "socat links removed",
          5000,
        );
      })();
      return stopped;
    },
  };
}

/** The test's end of a pair: bytes in and out. */
export interface PtyEnd {
  write(bytes: Uint8Array): Promise<number>;
  /** Reads into `buf`; `null` at the end. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Ends input, lets socat pass on what it holds, then stops it. */
  close(): Promise<void>;
}

/**
 * Opens the test's end of a pair through a second `socat` relaying its
 * stdin/stdout to the pty (Deno itself may open `/dev/pts/*` only with
 * --allow-all, which the test task does not grant).
 */
export function openEnd(path: string): Promise<PtyEnd> {
  const child = new Deno.Command("socat", {
    args: ["-", `${path},raw,echo=0`],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  let pending: Uint8Array | undefined;
  let closed = false;
  return Promise.resolve({
    async write(bytes) {
      await writer.write(bytes);
      return bytes.length;
    },
    async read(buf) {
      if (!pending || pending.length === 0) {
        const { value, done } = await reader.read();
        if (done || !value) return null;
        pending = value;
      }
      const n = Math.min(buf.length, pending.length);
      buf.set(pending.subarray(0, n));
      pending = pending.subarray(n);
      return n;
    },
    async close() {
      if (closed) return;
      closed = true;
      await writer.close().catch(() => {});
      // socat exits half a second after its input ends, once it has relayed it.
      const timer = setTimeout(() => {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
      }, 2000);
      await reader.cancel().catch(() => {});
      await child.status;
      clearTimeout(timer);
    },
  });
}

/**
 * Test options for tests that need the driver host's npm packages: they run
 * when installed, fail under `CI=true` when missing, and are ignored
 * locally otherwise (install with `deno task drivers`).
 */
export async function needsDriverPackages(): Promise<{ ignore: boolean }> {
  const installed = await requireService(
    "the driver host's npm packages",
    () => hostPackagesInstalled(),
    'run "deno task drivers"',
  );
  return { ignore: !installed };
}

/** A runtime of hardware devices with a `record` handler and a tap on its samples. */
export interface DeviceRuntime {
  runtime: Runtime;
  lines: Record<string, unknown>[];
  /** Every sample as it entered the pipeline, values included. */
  tapped: Sample[];
  /** The first tapped sample of `device` and `metric`. */
  first(device: string, metric: string): Sample;
  /** State of a device. */
  state(device: string): string | undefined;
}

/**
 * Creates (does not start) a runtime with `devices` (YAML of the `devices:`
 * block, indented by two spaces) → memory broker → `record` handler under
 * `key`. Clears the recordings.
 */
export async function deviceRuntime(devices: string, key: string): Promise<DeviceRuntime> {
  recordings.clear();
  const names = [...devices.matchAll(/^ {2}([\w-]+):/gm)].map((m) => m[1]);
  const { runtime, lines } = await createRuntime(`
devices:
${devices}
brokers:
  mem: { type: memory }
handlers:
  rec: { type: record, config: { key: ${key} } }
pipelines:
  main:
    from: [${names.join(", ")}]
    via: mem
    handlers: [rec]
    batch: { max_samples: 100, max_wait: 5ms }
`);
  const tapped: Sample[] = [];
  runtime.tap.subscribe({}, 1e9, (samples) => tapped.push(...samples));
  return {
    runtime,
    lines,
    tapped,
    first(device, metric) {
      const sample = tapped.find((s) => s.device === device && s.metric === metric);
      if (!sample) throw new Error(`No sample of "${device}/${metric}"`);
      return sample;
    },
    state: (device) => runtime.devices().find((d) => d.name === device)?.state,
  };
}

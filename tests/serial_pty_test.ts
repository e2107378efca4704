import assert from "node:assert/strict";
import type { Runtime } from "../core/runtime/runtime.ts";
import { driverHost } from "../plugins/_driver_host/mod.ts";
import { recording } from "./_fixtures/plugins.ts";
import {
  deviceRuntime,
  needsDriverPackages,
  openEnd,
  type PtyPair,
  startPtyPair,
} from "./_fixtures/pty.ts";
import { waitFor } from "./_fixtures/runtime.ts";

const packages = await needsDriverPackages();

function serialRuntime(key: string, pair: PtyPair, dir: string, decode: string) {
  return deviceRuntime(
    `
  probe:
    type: serial
    config:
      path: ${pair.b}
      baud_rate: 115200
      allowed_paths: [${dir}]
      decode: ${decode}`,
    key,
  );
}

const REGEX_DECODE =
  `{ mode: regex, pattern: "T=(?<temperature>-?[0-9.]+) P=(?<pressure>[0-9.]+)", ` +
  `units: { temperature: "°C", pressure: hPa }, scale: { pressure: 100 } }`;

async function deviceUp(runtime: Runtime): Promise<number | undefined> {
  const { values } = await runtime.metrics.deviceUp.get();
  return values.find((v) => v.labels.device === "probe")?.value;
}

async function write(path: string, text: string): Promise<void> {
  const file = await openEnd(path);
  try {
    const bytes = new TextEncoder().encode(text);
    let done = 0;
    while (done < bytes.length) done += await file.write(bytes.subarray(done));
  } finally {
    await file.close();
  }
}

Deno.test({
  name: "serial reads regex lines from a real pty into one sample per named group",
  ...packages,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "serial_pty_" });
    const pair = await startPtyPair(dir);
    const { runtime, tapped, state } = await serialRuntime("regex", pair, dir, REGEX_DECODE);
    try {
      runtime.start();
      await waitFor(() => state("probe") === "up", "device up");
      const before = Date.now();
      await write(pair.a, "T=21.5 P=1013.2\r\nT=-3.25 P=990\ngarbage\n");
      await waitFor(() => recording("regex").seen.length >= 4, "4 samples");
      assert.deepEqual(recording("regex").seen.sort(), [
        "probe/pressure/0",
        "probe/pressure/1",
        "probe/temperature/0",
        "probe/temperature/1",
      ]);
      const values = tapped.map((s) => [s.metric, s.value, s.unit]);
      assert.deepEqual(values, [
        ["temperature", 21.5, "°C"],
        ["pressure", 101320, "hPa"],
        ["temperature", -3.25, "°C"],
        ["pressure", 99000, "hPa"],
      ]);
      for (const s of tapped) {
        assert.ok(s.ts >= before - 5 && s.ts <= Date.now());
      }
      assert.equal(
        runtime.devices()[0]!.read_errors,
        1,
        "the garbage line counts as a read error",
      );
    } finally {
      await runtime.stop();
      await pair.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "serial poll mode writes the command and decodes the responder's reply",
  ...packages,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "serial_poll_" });
    const pair = await startPtyPair(dir);
    const responder = await openEnd(pair.a);
    const commands: string[] = [];
    let n = 0;
    const answering = (async () => {
      const buf = new Uint8Array(256);
      const enc = new TextEncoder();
      const dec = new TextDecoder();
      let rest = "";
      while (true) {
        const got = await responder.read(buf).catch(() => null);
        if (got === null) return;
        rest += dec.decode(buf.subarray(0, got));
        while (rest.includes("\r\n")) {
          const [command] = rest.split("\r\n", 1);
          rest = rest.slice(command!.length + 2);
          commands.push(command!);
          await responder.write(enc.encode(`T=${20 + n++} P=1000\r\n`));
        }
      }
    })();
    const decode = `{ mode: poll, command: "READ\\r\\n", interval: 20ms, timeout: 500ms, ` +
      `pattern: "T=(?<temperature>[0-9.]+)", units: { temperature: "°C" } }`;
    const { runtime, tapped, state } = await serialRuntime("poll", pair, dir, decode);
    try {
      runtime.start();
      await waitFor(
        () => recording("poll").seen.length >= 3,
        "3 polled samples",
      );
      assert.deepEqual(tapped.slice(0, 3).map((s) => s.value), [20, 21, 22]);
      assert.ok(commands.slice(0, 3).every((c) => c === "READ"));
      assert.equal(state("probe"), "up");
    } finally {
      await runtime.stop();
      await responder.close();
      await pair.stop();
      await answering;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "serial goes down when the pty disappears and comes back when it is recreated",
  ...packages,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "serial_unplug_" });
    let pair = await startPtyPair(dir);
    const { runtime, lines, state } = await serialRuntime("unplug", pair, dir, REGEX_DECODE);
    try {
      runtime.start();
      await waitFor(() => state("probe") === "up", "device up");
      await write(pair.a, "T=1 P=1\n");
      await waitFor(
        () => recording("unplug").seen.length >= 2,
        "first samples",
      );
      assert.equal(await deviceUp(runtime), 1);

      await pair.stop();
      // The driver host notices on its next read or reopen: slow on a loaded machine.
      await waitFor(() => state("probe") === "down", "device down", 20_000);
      assert.equal(await deviceUp(runtime), 0);

      pair = await startPtyPair(dir);
      await waitFor(() => state("probe") === "up", "device up again", 15_000);
      await write(pair.a, "T=2 P=2\n");
      await waitFor(
        () => recording("unplug").seen.length >= 4,
        "samples after replug",
      );
      assert.equal(await deviceUp(runtime), 1);
      assert.ok(recording("unplug").seen.includes("probe/temperature/1"));
      const downs = lines.filter((l) => l.msg === "Device down" && l.device === "probe");
      assert.equal(
        downs.length,
        1,
        "down is logged once, not once per failed reopen",
      );
      assert.ok(runtime.devices()[0]!.restarts >= 1);
    } finally {
      await runtime.stop();
      await pair.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "serial reads again on the same pty after the driver host is SIGKILLed",
  ...packages,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "serial_kill_" });
    const pair = await startPtyPair(dir);
    const { runtime, state } = await serialRuntime("kill_serial", pair, dir, REGEX_DECODE);
    try {
      runtime.start();
      await waitFor(() => state("probe") === "up", "device up");
      await write(pair.a, "T=1 P=1\n");
      await waitFor(() => recording("kill_serial").seen.length >= 2, "first samples");
      const pid = driverHost.pid!;
      Deno.kill(pid, "SIGKILL");
      await waitFor(() => state("probe") === "down", "device down");
      await waitFor(() => state("probe") === "up" && driverHost.pid !== undefined, "up again");
      assert.notEqual(driverHost.pid, pid);
      await write(pair.a, "T=2 P=2\n");
      await waitFor(() => recording("kill_serial").seen.length >= 4, "samples after restart");
      assert.ok(recording("kill_serial").seen.includes("probe/temperature/1"));
    } finally {
      await runtime.stop();
      await pair.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

import assert from "node:assert/strict";
import {
  driverHost,
  enableFakeBus,
  HOST_SCRIPT,
  hostPackagesInstalled,
} from "../plugins/_driver_host/mod.ts";
import { recording } from "./_fixtures/plugins.ts";
import { deviceRuntime, needsDriverPackages } from "./_fixtures/pty.ts";
import { waitFor } from "./_fixtures/runtime.ts";

enableFakeBus();
const packages = await needsDriverPackages();

/** A host process driven by hand: `ask()` sends one request and waits for its reply. */
function rawHost(script = HOST_SCRIPT, args: string[] = []) {
  const child = new Deno.Command("node", {
    args: [script, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const waiting = new Map<number, (reply: Record<string, unknown>) => void>();
  void (async () => {
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        const message = JSON.parse(line);
        waiting.get(message.id)?.(message);
      }
    }
  })();
  let id = 0;
  return {
    ask(request: Record<string, unknown>): Promise<Record<string, unknown>> {
      const n = ++id;
      const reply = new Promise<Record<string, unknown>>((resolve) => waiting.set(n, resolve));
      void writer.write(new TextEncoder().encode(JSON.stringify({ id: n, ...request }) + "\n"));
      return reply;
    },
    async stop(): Promise<void> {
      await writer.close();
      await child.status;
    },
  };
}

Deno.test({
  name: "driver host loads the native serialport, i2c-bus and spi-device modules under Node",
  ...packages,
  async fn() {
    const host = rawHost();
    try {
      const reply = await host.ask({ op: "probe" });
      assert.equal(reply.error, undefined);
      assert.deepEqual(reply.loaded, { "serialport": true, "i2c-bus": true, "spi-device": true });
    } finally {
      await host.stop();
    }
  },
});

Deno.test("driver host refuses serial paths outside /dev/ unless allowed", async () => {
  const host = rawHost();
  try {
    const refused = await host.ask({ op: "open", device: "d", kind: "serial", path: "/tmp/x/B" });
    assert.equal(refused.ok, false);
    assert.equal(refused.code, "refused");
    assert.equal(refused.error, 'Serial path "/tmp/x/B" is outside /dev/ and not in allowed_paths');
    const sneaky = await host.ask({
      op: "open",
      device: "d",
      kind: "serial",
      path: "/dev/../tmp/x/B",
    });
    assert.equal(sneaky.code, "refused");
    const allowedButMissing = await host.ask({
      op: "open",
      device: "d",
      kind: "serial",
      path: "/tmp/x/B",
      allowed_paths: ["/tmp/x"],
    });
    assert.equal(allowedButMissing.code, "not_found");
  } finally {
    await host.stop();
  }
});

Deno.test("driver host refuses a fake bus unless started with --allow-fake-bus", async () => {
  const open = { op: "open", device: "f", kind: "i2c", bus: 1, address: 0x48, fake: {} };
  const strict = rawHost();
  const testing = rawHost(HOST_SCRIPT, ["--allow-fake-bus"]);
  try {
    const refused = await strict.ask(open);
    assert.equal(refused.error, "Fake bus is disabled: it is for tests only");
    assert.equal((await testing.ask(open)).ok, true);
  } finally {
    await strict.stop();
    await testing.stop();
  }
});

Deno.test("driver host without its packages answers with code missing_packages", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bare_host_" });
  try {
    // The host's modules alone, without its node_modules.
    const hostDir = new URL(".", `file://${HOST_SCRIPT}`).pathname;
    for await (const entry of Deno.readDir(hostDir)) {
      if (entry.name.endsWith(".mjs")) {
        await Deno.copyFile(hostDir + entry.name, `${dir}/${entry.name}`);
      }
    }
    assert.equal(await hostPackagesInstalled(["serial"], dir), false);
    const host = rawHost(`${dir}/host.mjs`);
    try {
      assert.equal((await host.ask({ op: "hello" })).ok, true);
      const reply = await host.ask({ op: "probe", modules: ["serialport"] });
      assert.equal(reply.code, "missing_packages");
      assert.equal(reply.error, 'Package "serialport" is not installed');
    } finally {
      await host.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a SIGKILLed driver host is restarted and its devices come back up", async () => {
  const { runtime, lines } = await deviceRuntime(
    `
  board:
    type: i2c
    config: { bus: 1, preset: tmp102, interval: 10ms, fake_bus: { registers: { "0x00": [0x19, 0x00] } } }
  adc:
    type: spi
    config:
      bus: 0
      preset: mcp3008
      interval: 10ms
      channels: { a: { channel: 0 } }
      fake_bus: { default: [0, 2, 0] }`,
    "kill",
  );
  runtime.start();
  try {
    const upAll = () => runtime.devices().every((d) => d.state === "up");
    await waitFor(() => upAll() && recording("kill").seen.length >= 4, "devices up");
    const pid = driverHost.pid;
    assert.ok(pid !== undefined);
    Deno.kill(pid, "SIGKILL");
    await waitFor(() => runtime.devices().every((d) => d.state === "down"), "devices down");
    const errors = runtime.devices().map((d) => d.last_error ?? "");
    assert.ok(
      errors.every((e) => /Driver host exited \(signal SIGKILL\)/.test(e)),
      `last errors: ${JSON.stringify(errors)}`,
    );
    await waitFor(upAll, "devices up again", 15_000);
    const newPid = driverHost.pid;
    assert.ok(newPid !== undefined && newPid !== pid);
    const before = recording("kill").seen.length;
    await waitFor(() => recording("kill").seen.length > before + 4, "samples after restart");
    assert.ok(lines.some((l) => l.msg === "Driver host exited"));
  } finally {
    await runtime.stop();
  }
  assert.equal(driverHost.pid, undefined, "the host stops with the last device");
});

import assert from "node:assert/strict";
import { deviceRuntime, needsDriverPackages, startPtyPair } from "./_fixtures/pty.ts";
import { waitFor } from "./_fixtures/runtime.ts";
import { startModbusRtuServer } from "./_fixtures/modbus.ts";
import { needs } from "./_fixtures/tools.ts";

const packages = await needsDriverPackages();
const noSocat = await needs("socat");

Deno.test({
  name: "modbus RTU reads registers, coils and several unit ids from a slave over a socat pty pair",
  ignore: packages.ignore || noSocat,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "modbus_rtu_" });
    const pair = await startPtyPair(dir);
    const server = await startModbusRtuServer(pair.a);
    const { runtime, tapped, state } = await deviceRuntime(
      `
  plc:
    type: modbus
    config:
      connection: { transport: rtu, path: ${pair.b}, baud_rate: 115200, allowed_paths: [${dir}] }
      timeout: 1s
      groups:
        - interval: 100ms
          values:
            - { metric: float32, address: 12, type: float32, word_order: little }
            - { metric: int32, address: 2, type: int32 }
            - { metric: input, table: input, address: 3 }
            - { metric: coil, table: coil, address: 2 }
            - { metric: unit2, address: 1, unit_id: 2 }
            - { metric: missing, address: 150 }`,
      "mb-rtu",
    );
    try {
      const before = Date.now();
      runtime.start();
      const metrics = ["float32", "int32", "input", "coil", "unit2"];
      await waitFor(
        () => metrics.every((m) => tapped.some((s) => s.metric === m)),
        "a sample of every value",
        20_000,
      );
      const value = (m: string) => tapped.find((s) => s.metric === m)!.value;
      assert.equal(value("float32"), Math.fround(123.456));
      assert.equal(value("int32"), -123456);
      assert.equal(value("input"), 1003);
      assert.equal(value("coil"), 1);
      assert.equal(value("unit2"), 2001);
      assert.equal(state("plc"), "up");
      for (const s of tapped) assert.ok(s.ts >= before && s.ts <= Date.now());
      await waitFor(() => runtime.devices()[0]!.read_errors > 0, "the exception as a read error");
      assert.equal(
        runtime.devices()[0]!.last_error,
        'Modbus exception 2 (illegal data address) reading holding register 150 of unit 1 ("missing")',
      );
    } finally {
      await runtime.stop();
      await server.stop();
      await pair.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "modbus RTU goes down when the slave stops answering after the retries, and up when it answers again",
  ignore: packages.ignore || noSocat,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "modbus_rtu_" });
    const pair = await startPtyPair(dir);
    let server = await startModbusRtuServer(pair.a);
    const { runtime, tapped, state } = await deviceRuntime(
      `
  plc:
    type: modbus
    config:
      connection: { transport: rtu, path: ${pair.b}, baud_rate: 115200, allowed_paths: [${dir}] }
      timeout: 200ms
      retries: 1
      groups:
        - interval: 50ms
          values:
            - { metric: int16, address: 0, type: int16 }`,
      "mb-rtu-down",
    );
    try {
      runtime.start();
      await waitFor(() => tapped.length > 0, "a first sample", 20_000);
      await server.stop();
      await waitFor(() => state("plc") === "down", "device down", 20_000);
      assert.equal(
        runtime.devices()[0]!.last_error,
        'No reply reading holding register 0 of unit 1 on "plc" after 2 tries of 200 ms',
      );
      server = await startModbusRtuServer(pair.a);
      const before = tapped.length;
      await waitFor(() => state("plc") === "up" && tapped.length > before, "device up", 20_000);
      assert.equal(tapped.at(-1)!.value, -2);
    } finally {
      await runtime.stop();
      await server.stop();
      await pair.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

import assert from "node:assert/strict";
import { deviceRuntime } from "./_fixtures/pty.ts";
import { recording } from "./_fixtures/plugins.ts";
import { waitFor } from "./_fixtures/runtime.ts";
import { startModbusTcpServer } from "./_fixtures/modbus.ts";
import { freePort } from "./_fixtures/tools.ts";

/** The register map of tests/_fixtures/modbus_server.mjs, one value per type and order. */
const TYPED_VALUES = `
          - { metric: int16, address: 0, type: int16 }
          - { metric: uint16, address: 1, type: uint16 }
          - { metric: int32_abcd, address: 2, type: int32 }
          - { metric: int32_cdab, address: 4, type: int32, word_order: little }
          - { metric: uint32_abcd, address: 6, type: uint32 }
          - { metric: uint32_badc, address: 8, type: uint32, byte_order: little }
          - { metric: float32_abcd, address: 10, type: float32 }
          - { metric: float32_cdab, address: 12, type: float32, word_order: little }
          - { metric: float32_badc, address: 14, type: float32, byte_order: little }
          - { metric: float32_dcba, address: 16, type: float32, byte_order: little, word_order: little }
          - { metric: float64_abcd, address: 18, type: float64 }
          - { metric: float64_dcba, address: 22, type: float64, byte_order: little, word_order: little }
          - { metric: scaled, address: 26, scale: 0.1, offset: -10, unit: "°C" }
          - { metric: input, table: input, address: 7 }
          - { metric: coil_on, table: coil, address: 4 }
          - { metric: coil_off, table: coil, address: 5 }
          - { metric: discrete_on, table: discrete, address: 9 }
          - { metric: discrete_off, table: discrete, address: 10 }
          - { metric: unit2, address: 5, unit_id: 2 }`;

const FLOAT32 = Math.fround(123.456);
const EXPECTED: Record<string, number> = {
  int16: -2,
  uint16: 65534,
  int32_abcd: -123456,
  int32_cdab: -123456,
  uint32_abcd: 4000000000,
  uint32_badc: 4000000000,
  float32_abcd: FLOAT32,
  float32_cdab: FLOAT32,
  float32_badc: FLOAT32,
  float32_dcba: FLOAT32,
  float64_abcd: 1234.5678,
  float64_dcba: 1234.5678,
  scaled: 11.5,
  input: 1007,
  coil_on: 1,
  coil_off: 0,
  discrete_on: 1,
  discrete_off: 0,
  unit2: 2005,
};

function modbusRuntime(key: string, port: number, values: string, extra = "") {
  return deviceRuntime(
    `
  plc:
    type: modbus
    config:
      connection: { transport: tcp, host: 127.0.0.1, port: ${port} }
      timeout: 500ms
      retries: 1${extra}
      groups:
        - name: main
          interval: 50ms
          values:${values}`,
    key,
  );
}

Deno.test("modbus TCP decodes every data type, byte and word order, table and unit id of a real server", async () => {
  const port = freePort();
  const server = await startModbusTcpServer(port);
  const { runtime, tapped, state } = await modbusRuntime("mb-types", port, TYPED_VALUES);
  try {
    runtime.start();
    await waitFor(
      () => Object.keys(EXPECTED).every((m) => tapped.some((s) => s.metric === m)),
      "a sample of every value",
    );
    assert.equal(state("plc"), "up");
    for (const [metric, expected] of Object.entries(EXPECTED)) {
      const sample = tapped.find((s) => s.metric === metric)!;
      assert.equal(sample.value, expected, metric);
      assert.equal(sample.device, "plc");
    }
    assert.equal(tapped.find((s) => s.metric === "scaled")!.unit, "°C");
    assert.equal(runtime.devices()[0]!.read_errors, 0);
    await waitFor(() => recording("mb-types").seen.length > 0, "samples reach the handler");
  } finally {
    await runtime.stop();
    await server.stop();
  }
});

Deno.test("modbus TCP reports an exception answer as a read error naming the register, and reads the rest of the batch", async () => {
  const port = freePort();
  const server = await startModbusTcpServer(port);
  // 98-100 make one read; 100 answers exception 2, so the batch is read value by value.
  const values = `
          - { metric: r98, address: 98 }
          - { metric: r99, address: 99 }
          - { metric: missing, address: 100 }
          - { metric: failing, address: 300 }`;
  const { runtime, tapped, state } = await modbusRuntime("mb-exc", port, values);
  try {
    runtime.start();
    await waitFor(() => runtime.devices()[0]!.read_errors >= 2, "two read errors");
    await waitFor(() => tapped.some((s) => s.metric === "r99"), "the rest of the batch");
    assert.equal(state("plc"), "up", "an exception answer does not take the device down");
    assert.equal(tapped.find((s) => s.metric === "r98")!.value, 98);
    assert.ok(!tapped.some((s) => s.metric === "missing" || s.metric === "failing"));
    const errors = new Set<string>();
    await waitFor(() => {
      errors.add(runtime.devices()[0]!.last_error ?? "");
      return errors.size >= 2;
    }, "both exception messages");
    assert.ok(
      errors.has(
        'Modbus exception 2 (illegal data address) reading holding register 100 of unit 1 ("missing")',
      ),
      [...errors].join("\n"),
    );
    assert.ok(
      errors.has(
        'Modbus exception 4 (server device failure) reading holding register 300 of unit 1 ("failing")',
      ),
      [...errors].join("\n"),
    );
  } finally {
    await runtime.stop();
    await server.stop();
  }
});

Deno.test("modbus TCP goes down when its server is killed and up again once it is back", async () => {
  const port = freePort();
  let server = await startModbusTcpServer(port);
  const values = `
          - { metric: int16, address: 0, type: int16 }`;
  const { runtime, tapped, state } = await modbusRuntime("mb-restart", port, values);
  try {
    runtime.start();
    await waitFor(() => tapped.length > 0, "a first sample");
    await server.stop();
    await waitFor(() => state("plc") === "down", "device down", 20_000);
    assert.match(runtime.devices()[0]!.last_error ?? "", /127\.0\.0\.1:\d+/);
    server = await startModbusTcpServer(port);
    const before = tapped.length;
    await waitFor(() => state("plc") === "up" && tapped.length > before, "device up again", 20_000);
    assert.equal(tapped.at(-1)!.value, -2);
    assert.ok(runtime.devices()[0]!.restarts >= 1);
  } finally {
    await runtime.stop();
    await server.stop();
  }
});

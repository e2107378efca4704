import assert from "node:assert/strict";
import { enableFakeBus } from "../plugins/_driver_host/mod.ts";
import { recording } from "./_fixtures/plugins.ts";
import { deviceRuntime } from "./_fixtures/pty.ts";
import { waitFor } from "./_fixtures/runtime.ts";

enableFakeBus();

Deno.test("spi mcp3008 preset and a custom frame run host → protocol → plugin → sample on a fake bus", async () => {
  const { runtime, first } = await deviceRuntime(
    `
  adc:
    type: spi
    config:
      bus: 0
      device: 1
      preset: mcp3008
      vref: 3.3
      interval: 20ms
      channels:
        supply: { channel: 1 }
        tank_level: { channel: 7, scale: 100, offset: -10, unit: "%" }
      fake_bus:
        replies: { "01 90 00": [0x00, 0x02, 0x00], "01 f0 00": [0xaa, 0xf9, 0x35] }
  therm:
    type: spi
    config:
      bus: 0
      interval: 20ms
      frame: [0x00, 0x00]
      fields:
        temperature: { bit_offset: 0, bit_length: 13, signed: true, scale: 0.0625, unit: "°C" }
      fake_bus: { default: [0x0C, 0x80] }`,
    "spi",
  );
  runtime.start();
  try {
    const seen = () => recording("spi").seen;
    await waitFor(
      () => ["adc/tank_level/1", "therm/temperature/1"].every((k) => seen().includes(k)),
      "two reads of both devices",
    );
    assert.equal(first("adc", "supply").value, 1.65);
    assert.equal(first("adc", "supply").unit, "V");
    assert.ok(Math.abs(first("adc", "tank_level").value - (309 * 3.3 / 1024 * 100 - 10)) < 1e-9);
    assert.equal(first("adc", "tank_level").unit, "%");
    // 0x0C80 >> 3 = 400 steps of 0.0625 °C
    assert.equal(first("therm", "temperature").value, 25);
  } finally {
    await runtime.stop();
  }
});

Deno.test("spi goes down when the fake bus has no reply for its frame", async () => {
  const { runtime, state } = await deviceRuntime(
    `
  adc:
    type: spi
    config: { bus: 0, preset: mcp3008, interval: 20ms, channels: { a: { channel: 0 } }, fake_bus: {} }`,
    "spi_down",
  );
  runtime.start();
  try {
    await waitFor(() => state("adc") === "down", "device down");
    assert.match(
      runtime.devices()[0]!.last_error ?? "",
      /Fake SPI bus has no reply for frame "01 80 00"/,
    );
  } finally {
    await runtime.stop();
  }
});

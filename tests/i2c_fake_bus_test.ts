import assert from "node:assert/strict";
import { enableFakeBus } from "../plugins/_driver_host/mod.ts";
import { recording } from "./_fixtures/plugins.ts";
import { deviceRuntime } from "./_fixtures/pty.ts";
import { waitFor } from "./_fixtures/runtime.ts";

enableFakeBus();

const bme280 = JSON.parse(
  await Deno.readTextFile(
    new URL("../plugins/i2c/testcases/bme280_datasheet.json", import.meta.url),
  ),
);

Deno.test("i2c presets and register maps run host → protocol → plugin → sample on a fake bus", async () => {
  const { runtime, tapped, first } = await deviceRuntime(
    `
  weather:
    type: i2c
    config:
      bus: 1
      preset: bme280
      interval: 20ms
      fake_bus: { registers: ${JSON.stringify(bme280.registers)} }
  board:
    type: i2c
    config:
      bus: 1
      preset: tmp102
      interval: 20ms
      fake_bus: { registers: { "0x00": [0xE7, 0x00] } }
  custom:
    type: i2c
    config:
      bus: 3
      address: 0x40
      interval: 20ms
      trigger: { register: 0x01, bytes: [0x80], delay: 1ms }
      registers:
        level: { register: 0x10, bytes: 2, order: little, signed: true, scale: 0.1, offset: 5, unit: mm }
        status: { register: 0x01, bytes: 1 }
      fake_bus: { registers: { "0x10": [0x18, 0xFC] } }`,
    "i2c",
  );
  const started = Date.now();
  runtime.start();
  try {
    const seen = () => recording("i2c").seen;
    await waitFor(
      () =>
        ["weather/humidity/1", "board/temperature/1", "custom/status/1"].every((k) =>
          seen().includes(k)
        ),
      "two reads of every device",
    );
    assert.ok(Math.abs(first("weather", "temperature").value - 25.08) < 0.005);
    assert.equal(first("weather", "temperature").unit, "°C");
    assert.ok(Math.abs(first("weather", "pressure").value - 1006.5327) < 0.0001);
    assert.equal(first("weather", "pressure").unit, "hPa");
    const humidity = first("weather", "humidity");
    assert.ok(humidity.value > 0 && humidity.value < 100 && humidity.unit === "%RH");
    assert.equal(first("board", "temperature").value, -25);
    // 0xFC18 little-endian signed = -1000 → -1000 × 0.1 + 5
    assert.equal(first("custom", "level").value, -95);
    assert.equal(first("custom", "level").unit, "mm");
    assert.equal(first("custom", "status").value, 0x80, "the trigger write landed before the read");
    for (const s of tapped) assert.ok(s.ts >= started && s.ts <= Date.now());
    assert.ok(runtime.devices().every((d) => d.state === "up"));
  } finally {
    await runtime.stop();
  }
});

Deno.test("i2c bme280 preset goes down when the chip id is wrong", async () => {
  const { runtime, state } = await deviceRuntime(
    `
  wrong:
    type: i2c
    config: { bus: 1, preset: bme280, fake_bus: { registers: { "0xD0": [0x58] } } }`,
    "wrong",
  );
  runtime.start();
  try {
    await waitFor(() => state("wrong") === "down", "device down");
    assert.equal(
      runtime.devices()[0]!.last_error,
      "Expected a BME280 (chip id 0x60), got chip id 0x58",
    );
  } finally {
    await runtime.stop();
  }
});

import assert from "node:assert/strict";
import i2c, { configSchema } from "./mod.ts";
import { bme280Reader, type I2cBus, registerMapReader } from "./_presets.ts";

/** A bus double over 256 registers that logs writes and sleeps. */
function memoryBus(registers: Record<string, number[]>) {
  const memory = new Uint8Array(256);
  for (const [key, bytes] of Object.entries(registers)) memory.set(bytes, Number(key));
  const log: string[] = [];
  const bus: I2cBus = {
    read: (blocks) =>
      Promise.resolve({
        ts: 42,
        reads: blocks.map(({ register, length }) => [
          ...memory.subarray(register, register + length),
        ]),
      }),
    write: (register, bytes) => {
      log.push(`write 0x${register.toString(16)} ${bytes.join(",")}`);
      memory.set(bytes, register);
      return Promise.resolve();
    },
    sleep: (ms) => {
      log.push(`sleep ${ms}`);
      return Promise.resolve();
    },
  };
  return { bus, log };
}

Deno.test("i2c config needs a preset or registers, and an address without a preset", () => {
  const issues = (input: unknown) =>
    configSchema.safeParse(input).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  assert.deepEqual(issues({ bus: 1 }), [
    "registers: Expected a preset or registers",
    "address: Expected an address (only presets have a default)",
  ]);
  assert.deepEqual(
    issues({ bus: 1, preset: "tmp102", registers: { t: { register: 0 } } }),
    ["preset: Use either a preset or registers/trigger, not both"],
  );
  assert.equal(configSchema.safeParse({ bus: 1, address: 0x78, preset: "tmp102" }).success, false);
  assert.equal(configSchema.parse({ bus: 1, preset: "bme280" }).interval, 1000);
});

Deno.test("i2c register map writes the trigger, waits, then reads every register", async () => {
  const config = configSchema.parse({
    bus: 1,
    address: 0x40,
    trigger: { register: 1, bytes: [0x80], delay: "20ms" },
    registers: { level: { register: 0x10, bytes: 2, signed: true, scale: 0.5, unit: "mm" } },
  });
  const reader = registerMapReader(config.registers, config.trigger);
  const { bus, log } = memoryBus({ "16": [0xff, 0xfe] });
  await reader.init(bus);
  assert.deepEqual(await reader.read(bus), {
    ts: 42,
    readings: [{ metric: "level", value: -1, unit: "mm" }],
  });
  assert.deepEqual(log, ["write 0x1 128", "sleep 20"]);
});

Deno.test("bme280 preset sets oversampling, forces a conversion per read and compensates", async () => {
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./testcases/bme280_datasheet.json", import.meta.url)),
  );
  const { bus, log } = memoryBus(fixture.registers);
  const reader = bme280Reader();
  await reader.init(bus);
  const { readings } = await reader.read(bus);
  assert.deepEqual(log, ["write 0xf2 1", "write 0xf4 37", "sleep 10"]);
  assert.deepEqual(readings.map((r) => [r.metric, r.unit]), [
    ["temperature", "°C"],
    ["pressure", "hPa"],
    ["humidity", "%RH"],
  ]);
  assert.ok(Math.abs(readings[0]!.value - 25.08) < 0.005);
  assert.ok(Math.abs(readings[1]!.value - 1006.5327) < 0.0001);
});

Deno.test("i2c plugin is a device with a described schema", () => {
  assert.equal(i2c.kind, "device");
  assert.equal(i2c.name, "i2c");
});

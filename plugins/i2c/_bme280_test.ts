import assert from "node:assert/strict";
import {
  type Bme280Calibration,
  compensate,
  compensateTemperature,
  parseCalibration,
  parseRaw,
} from "./_bme280.ts";

interface Fixture {
  registers: Record<string, number[]>;
  calibration: Bme280Calibration;
  raw: { adcT: number; adcP: number; adcH: number };
  expected: { temperature: number; pressure_pa: number };
  tolerance: { temperature: number; pressure_pa: number };
}

const fixture: Fixture = JSON.parse(
  await Deno.readTextFile(new URL("./testcases/bme280_datasheet.json", import.meta.url)),
);

/** The datasheet's integer temperature (int32) and humidity (Q22.10) formulas, in BigInt. */
function integerReference(c: Bme280Calibration, raw: Fixture["raw"]) {
  const B = BigInt;
  const adcT = B(raw.adcT), adcP = B(raw.adcP), adcH = B(raw.adcH);
  const var1 = (((adcT >> 3n) - (B(c.T1) << 1n)) * B(c.T2)) >> 11n;
  const d = (adcT >> 4n) - B(c.T1);
  const var2 = (((d * d) >> 12n) * B(c.T3)) >> 14n;
  const tFine = var1 + var2;
  const temperature = Number((tFine * 5n + 128n) >> 8n) / 100;

  let p1 = tFine - 128000n;
  let p2 = p1 * p1 * B(c.P6);
  p2 = p2 + ((p1 * B(c.P5)) << 17n);
  p2 = p2 + (B(c.P4) << 35n);
  p1 = ((p1 * p1 * B(c.P3)) >> 8n) + ((p1 * B(c.P2)) << 12n);
  p1 = (((1n << 47n) + p1) * B(c.P1)) >> 33n;
  let p = 1048576n - adcP;
  p = (((p << 31n) - p2) * 3125n) / p1;
  const q1 = (B(c.P9) * (p >> 13n) * (p >> 13n)) >> 25n;
  const q2 = (B(c.P8) * p) >> 19n;
  p = ((p + q1 + q2) >> 8n) + (B(c.P7) << 4n);
  const pressure = Number(p) / 256;

  let h = tFine - 76800n;
  h = (((adcH << 14n) - (B(c.H4) << 20n) - B(c.H5) * h + 16384n) >> 15n) *
    (((((((h * B(c.H6)) >> 10n) * (((h * B(c.H3)) >> 11n) + 32768n)) >> 10n) + 2097152n) *
        B(c.H2) + 8192n) >> 14n);
  h = h - (((((h >> 15n) * (h >> 15n)) >> 7n) * B(c.H1)) >> 4n);
  h = h < 0n ? 0n : h > 419430400n ? 419430400n : h;
  const humidity = Number(h >> 12n) / 1024;
  return { temperature, pressure, humidity };
}

Deno.test("parseCalibration() reads the datasheet words back from the register bytes", () => {
  const r = fixture.registers;
  assert.deepEqual(parseCalibration(r["0x88"]!, r["0xE1"]!), fixture.calibration);
});

Deno.test("parseRaw() splits the data registers into 20-bit and 16-bit readings", () => {
  assert.deepEqual(parseRaw(fixture.registers["0xF7"]!), fixture.raw);
});

Deno.test("BME280 compensation gives the datasheet's 25.08 °C and 100653 Pa", () => {
  const c = fixture.calibration;
  const { temperature } = compensateTemperature(c, fixture.raw.adcT);
  assert.ok(Math.abs(temperature - fixture.expected.temperature) < fixture.tolerance.temperature);
  const r = compensate(c, fixture.raw);
  assert.ok(
    Math.abs(r.pressure - fixture.expected.pressure_pa) < fixture.tolerance.pressure_pa,
    `pressure ${r.pressure}`,
  );
});

Deno.test("BME280 floating-point compensation agrees with the datasheet's integer formulas", () => {
  const r = compensate(fixture.calibration, fixture.raw);
  const ref = integerReference(fixture.calibration, fixture.raw);
  assert.ok(
    Math.abs(r.temperature - ref.temperature) <= 0.01,
    `T ${r.temperature} ${ref.temperature}`,
  );
  assert.ok(Math.abs(r.pressure - ref.pressure) <= 1, `P ${r.pressure} ${ref.pressure}`);
  assert.ok(Math.abs(r.humidity - ref.humidity) <= 0.05, `H ${r.humidity} ${ref.humidity}`);
  assert.ok(r.humidity > 0 && r.humidity < 100);
});

Deno.test("parseCalibration() refuses blocks of the wrong length", () => {
  assert.throws(
    () => parseCalibration([1, 2], []),
    /Expected 26 \+ 7 calibration bytes, got 2 \+ 0/,
  );
});

/**
 * Bosch BME280 (temperature, pressure, humidity): calibration parsing and
 * the datasheet's floating-point compensation formulas (BME280 datasheet,
 * section 8.1). Pure; the device reads the bytes.
 *
 * @module
 */
import { readInteger } from "./_decode.ts";

/** `id` register value of a BME280. */
export const BME280_CHIP_ID = 0x60;
/** Chip id register. */
export const REG_CHIP_ID = 0xd0;
/** First block of calibration words: dig_T1 … dig_P9, then dig_H1 at 0xA1. */
export const REG_CALIB_00 = 0x88;
export const CALIB_00_LENGTH = 26;
/** Second block: dig_H2 … dig_H6. */
export const REG_CALIB_26 = 0xe1;
export const CALIB_26_LENGTH = 7;
/** Humidity oversampling control (takes effect on the next ctrl_meas write). */
export const REG_CTRL_HUM = 0xf2;
/** Temperature/pressure oversampling and mode. */
export const REG_CTRL_MEAS = 0xf4;
/** press_msb … hum_lsb. */
export const REG_DATA = 0xf7;
export const DATA_LENGTH = 8;
/** ctrl_hum: humidity oversampling ×1. */
export const CTRL_HUM_X1 = 0x01;
/** ctrl_meas: temperature ×1, pressure ×1, forced mode (one conversion, then sleep). */
export const CTRL_MEAS_FORCED_X1 = 0b001_001_01;
/** Longest conversion time at ×1 oversampling of all three (datasheet 9.1: 9.3 ms), rounded up. */
export const CONVERSION_MS = 10;

/** The calibration words of one part (NVM trimming parameters). */
export interface Bme280Calibration {
  T1: number;
  T2: number;
  T3: number;
  P1: number;
  P2: number;
  P3: number;
  P4: number;
  P5: number;
  P6: number;
  P7: number;
  P8: number;
  P9: number;
  H1: number;
  H2: number;
  H3: number;
  H4: number;
  H5: number;
  H6: number;
}

/** Raw ADC readings. */
export interface Bme280Raw {
  adcT: number;
  adcP: number;
  adcH: number;
}

/** Compensated readings: °C, Pa, %RH. */
export interface Bme280Reading {
  temperature: number;
  pressure: number;
  humidity: number;
}

const u16 = (b: readonly number[], i: number) => readInteger([b[i]!, b[i + 1]!], "little", false);
const s16 = (b: readonly number[], i: number) => readInteger([b[i]!, b[i + 1]!], "little", true);
const s12 = (v: number) => (v >= 0x800 ? v - 0x1000 : v);

/** Parses the 26 bytes at 0x88 and the 7 bytes at 0xE1. */
export function parseCalibration(
  calib00: readonly number[],
  calib26: readonly number[],
): Bme280Calibration {
  if (
    calib00.length !== CALIB_00_LENGTH || calib26.length !== CALIB_26_LENGTH
  ) {
    throw new Error(
      `Expected ${CALIB_00_LENGTH} + ${CALIB_26_LENGTH} calibration bytes, got ` +
        `${calib00.length} + ${calib26.length}`,
    );
  }
  const e4 = calib26[3]!, e5 = calib26[4]!, e6 = calib26[5]!;
  return {
    T1: u16(calib00, 0),
    T2: s16(calib00, 2),
    T3: s16(calib00, 4),
    P1: u16(calib00, 6),
    P2: s16(calib00, 8),
    P3: s16(calib00, 10),
    P4: s16(calib00, 12),
    P5: s16(calib00, 14),
    P6: s16(calib00, 16),
    P7: s16(calib00, 18),
    P8: s16(calib00, 20),
    P9: s16(calib00, 22),
    H1: calib00[25]!,
    H2: s16(calib26, 0),
    H3: calib26[2]!,
    H4: s12((e4 << 4) | (e5 & 0x0f)),
    H5: s12((e6 << 4) | (e5 >> 4)),
    H6: readInteger([calib26[6]!], "big", true),
  };
}

/** Splits the 8 data bytes at 0xF7 into 20-bit pressure and temperature and 16-bit humidity. */
export function parseRaw(data: readonly number[]): Bme280Raw {
  if (data.length !== DATA_LENGTH) {
    throw new Error(`Expected ${DATA_LENGTH} data bytes, got ${data.length}`);
  }
  const b = (i: number) => data[i]!;
  return {
    adcP: (b(0) << 12) | (b(1) << 4) | (b(2) >> 4),
    adcT: (b(3) << 12) | (b(4) << 4) | (b(5) >> 4),
    adcH: (b(6) << 8) | b(7),
  };
}

/** Temperature in °C and `t_fine`, which pressure and humidity need. */
export function compensateTemperature(
  c: Bme280Calibration,
  adcT: number,
): { temperature: number; tFine: number } {
  const var1 = (adcT / 16384 - c.T1 / 1024) * c.T2;
  const d = adcT / 131072 - c.T1 / 8192;
  const var2 = d * d * c.T3;
  const tFine = var1 + var2;
  return { temperature: tFine / 5120, tFine };
}

/** Pressure in Pa; `undefined` when the calibration would divide by zero. */
export function compensatePressure(
  c: Bme280Calibration,
  adcP: number,
  tFine: number,
): number | undefined {
  let var1 = tFine / 2 - 64000;
  let var2 = (var1 * var1 * c.P6) / 32768;
  var2 = var2 + var1 * c.P5 * 2;
  var2 = var2 / 4 + c.P4 * 65536;
  var1 = ((c.P3 * var1 * var1) / 524288 + c.P2 * var1) / 524288;
  var1 = (1 + var1 / 32768) * c.P1;
  if (var1 === 0) return undefined;
  let p = 1048576 - adcP;
  p = ((p - var2 / 4096) * 6250) / var1;
  var1 = (c.P9 * p * p) / 2147483648;
  var2 = (p * c.P8) / 32768;
  return p + (var1 + var2 + c.P7) / 16;
}

/** Relative humidity in %RH, clamped to 0–100. */
export function compensateHumidity(
  c: Bme280Calibration,
  adcH: number,
  tFine: number,
): number {
  let h = tFine - 76800;
  h = (adcH - (c.H4 * 64 + (c.H5 / 16384) * h)) *
    ((c.H2 / 65536) *
      (1 + (c.H6 / 67108864) * h * (1 + (c.H3 / 67108864) * h)));
  h = h * (1 - (c.H1 * h) / 524288);
  return Math.min(100, Math.max(0, h));
}

/** All three compensated readings from raw values. */
export function compensate(
  c: Bme280Calibration,
  raw: Bme280Raw,
): Bme280Reading {
  const { temperature, tFine } = compensateTemperature(c, raw.adcT);
  const pressure = compensatePressure(c, raw.adcP, tFine);
  if (pressure === undefined) {
    throw new Error("BME280 calibration gives dig_P1 = 0");
  }
  return {
    temperature,
    pressure,
    humidity: compensateHumidity(c, raw.adcH, tFine),
  };
}

/**
 * How an I2C device is read: a generic register map (with optional
 * write-before-read), or a preset for a known part. Readers talk to a small
 * bus interface, so they run against the driver host or a test double.
 *
 * @module
 */
import {
  BME280_CHIP_ID,
  CALIB_00_LENGTH,
  CALIB_26_LENGTH,
  compensate,
  CONVERSION_MS,
  CTRL_HUM_X1,
  CTRL_MEAS_FORCED_X1,
  DATA_LENGTH,
  parseCalibration,
  parseRaw,
  REG_CALIB_00,
  REG_CALIB_26,
  REG_CHIP_ID,
  REG_CTRL_HUM,
  REG_CTRL_MEAS,
  REG_DATA,
} from "./_bme280.ts";
import type { Reading } from "../_driver_host/mod.ts";
import { decodeRegister, hex, type RegisterSpec } from "./_decode.ts";

/** What readers need of an I2C device. */
export interface I2cBus {
  /** Reads each block; `ts` is the host time right after the last read. */
  read(blocks: readonly { register: number; length: number }[]): Promise<{
    ts: number;
    reads: number[][];
  }>;
  write(register: number, bytes: readonly number[]): Promise<void>;
  sleep(ms: number): Promise<void>;
}

/** Reads one part: `init` once after opening, then `read` every interval. */
export interface I2cReader {
  init(bus: I2cBus): Promise<void>;
  read(bus: I2cBus): Promise<{ ts: number; readings: Reading[] }>;
}

/** A write that starts a conversion, and how long the conversion takes. */
export interface Trigger {
  register: number;
  bytes: readonly number[];
  delay: number;
}

/** Reads a register map, after the trigger if there is one. */
export function registerMapReader(
  registers: Readonly<Record<string, RegisterSpec>>,
  trigger?: Trigger,
): I2cReader {
  const entries = Object.entries(registers);
  const blocks = entries.map(([, spec]) => ({
    register: spec.register,
    length: spec.bytes,
  }));
  return {
    init: () => Promise.resolve(),
    async read(bus) {
      if (trigger) {
        await bus.write(trigger.register, trigger.bytes);
        if (trigger.delay > 0) await bus.sleep(trigger.delay);
      }
      const { ts, reads } = await bus.read(blocks);
      const readings = entries.map(([metric, spec], i) => ({
        metric,
        value: decodeRegister(spec, reads[i] ?? []),
        unit: spec.unit,
      }));
      return { ts, readings };
    },
  };
}

/**
 * TI TMP102: temperature register 0x00, 12-bit two's complement, left
 * justified in two big-endian bytes, 0.0625 °C per step: the 16-bit value
 * ÷ 256 (the four low bits read as 0).
 */
export const TMP102_REGISTERS: Readonly<Record<string, RegisterSpec>> = {
  temperature: {
    register: 0x00,
    bytes: 2,
    order: "big",
    signed: true,
    scale: 1 / 256,
    offset: 0,
    unit: "°C",
  },
};

/**
 * Bosch BME280: checks the chip id, reads the calibration once, then per
 * read starts a forced-mode conversion, waits for it and compensates.
 * Pressure is reported in hPa.
 */
export function bme280Reader(): I2cReader {
  let calibration: ReturnType<typeof parseCalibration> | undefined;
  return {
    async init(bus) {
      const { reads } = await bus.read([
        { register: REG_CHIP_ID, length: 1 },
        { register: REG_CALIB_00, length: CALIB_00_LENGTH },
        { register: REG_CALIB_26, length: CALIB_26_LENGTH },
      ]);
      const id = reads[0]?.[0];
      if (id !== BME280_CHIP_ID) {
        throw new Error(
          `Expected a BME280 (chip id 0x${hex(BME280_CHIP_ID)}), got chip id ${
            id === undefined ? "none" : `0x${hex(id)}`
          }`,
        );
      }
      calibration = parseCalibration(reads[1]!, reads[2]!);
      await bus.write(REG_CTRL_HUM, [CTRL_HUM_X1]);
    },
    async read(bus) {
      if (!calibration) throw new Error("BME280 read before init");
      await bus.write(REG_CTRL_MEAS, [CTRL_MEAS_FORCED_X1]);
      await bus.sleep(CONVERSION_MS);
      const { ts, reads } = await bus.read([{
        register: REG_DATA,
        length: DATA_LENGTH,
      }]);
      const r = compensate(calibration, parseRaw(reads[0]!));
      return {
        ts,
        readings: [
          { metric: "temperature", value: r.temperature, unit: "°C" },
          { metric: "pressure", value: r.pressure / 100, unit: "hPa" },
          { metric: "humidity", value: r.humidity, unit: "%RH" },
        ],
      };
    },
  };
}

/** Preset names → readers, and the part's default address. */
export const I2C_PRESETS = {
  tmp102: { address: 0x48, reader: () => registerMapReader(TMP102_REGISTERS) },
  bme280: { address: 0x76, reader: bme280Reader },
} as const;

/**
 * Pure register decoding of the `i2c` device: bytes → integer (byte order,
 * signedness) → engineering value (`raw × scale + offset`). No I/O.
 *
 * @module
 */

/** How one metric is read from the register map. */
export interface RegisterSpec {
  /** First register to read. */
  register: number;
  /** How many bytes (1 to 4). */
  bytes: number;
  order: "big" | "little";
  signed: boolean;
  scale: number;
  offset: number;
  unit?: string | undefined;
}

/**
 * The integer in `bytes` (1 to 4 of them) in the given byte order, two's
 * complement when `signed`.
 *
 * @example
 * ```ts
 * import { readInteger } from "./_decode.ts";
 * readInteger([0x19, 0x00], "big", true); // 6400
 * ```
 */
export function readInteger(
  bytes: readonly number[],
  order: "big" | "little",
  signed: boolean,
): number {
  const n = bytes.length;
  if (n < 1 || n > 4) throw new Error(`Expected 1 to 4 bytes, got ${n}`);
  let value = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[order === "big" ? i : n - 1 - i]!;
    if (!Number.isInteger(b) || b < 0 || b > 255) {
      throw new Error(`Byte ${b} is out of range`);
    }
    value = value * 256 + b;
  }
  const bits = 8 * n;
  if (signed && value >= 2 ** (bits - 1)) value -= 2 ** bits;
  return value;
}

/** The engineering value of a register read. */
export function decodeRegister(
  spec: RegisterSpec,
  bytes: readonly number[],
): number {
  if (bytes.length !== spec.bytes) {
    throw new Error(
      `Register 0x${hex(spec.register)} gave ${bytes.length} bytes, expected ${spec.bytes}`,
    );
  }
  return readInteger(bytes, spec.order, spec.signed) * spec.scale + spec.offset;
}

/** Two hex digits. */
export function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}

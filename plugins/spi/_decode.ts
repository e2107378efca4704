/**
 * Pure SPI frame decoding: a bit range of the reply frame → unsigned or
 * two's complement integer → `raw × scale + offset`. Bits are numbered from
 * the most significant bit of the first byte (bit 0), as they come off the
 * wire.
 *
 * @module
 */

/** Where a value sits in the reply frame and how it converts. */
export interface BitField {
  /** First bit, counted from the MSB of the first reply byte. */
  bit_offset: number;
  /** Number of bits (1–48). */
  bit_length: number;
  signed: boolean;
  scale: number;
  offset: number;
  unit?: string | undefined;
}

/**
 * The integer in bits `[bitOffset, bitOffset + bitLength)` of `frame`.
 *
 * @example
 * ```ts
 * import { readBits } from "./_decode.ts";
 * readBits([0x00, 0x02, 0x00], 14, 10, false); // 512
 * ```
 */
export function readBits(
  frame: readonly number[],
  bitOffset: number,
  bitLength: number,
  signed: boolean,
): number {
  if (bitLength < 1 || bitLength > 48) {
    throw new Error(`Expected 1 to 48 bits, got ${bitLength}`);
  }
  if (bitOffset < 0 || bitOffset + bitLength > frame.length * 8) {
    throw new Error(
      `Bits ${bitOffset}–${bitOffset + bitLength - 1} are outside a ${frame.length}-byte frame`,
    );
  }
  let value = 0;
  for (let i = bitOffset; i < bitOffset + bitLength; i++) {
    const bit = (frame[i >> 3]! >> (7 - (i & 7))) & 1;
    value = value * 2 + bit;
  }
  if (signed && value >= 2 ** (bitLength - 1)) value -= 2 ** bitLength;
  return value;
}

/** The engineering value of a field of `frame`. */
export function decodeField(field: BitField, frame: readonly number[]): number {
  return readBits(frame, field.bit_offset, field.bit_length, field.signed) *
      field.scale +
    field.offset;
}

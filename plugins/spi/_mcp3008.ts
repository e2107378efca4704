/**
 * Microchip MCP3008, 8-channel 10-bit ADC: the three-byte frame of a
 * single-ended read and the decoding of its reply (datasheet figure 6-1).
 *
 * @module
 */
import { readBits } from "./_decode.ts";

/** Highest code of a 10-bit conversion. */
export const MCP3008_MAX_CODE = 1023;

/**
 * The frame that reads `channel` (0–7): start bit, then single-ended mode
 * and the channel number in the high nibble of the second byte, then 8
 * clocks for the rest of the result.
 */
export function mcp3008Frame(channel: number, differential = false): number[] {
  if (!Number.isInteger(channel) || channel < 0 || channel > 7) {
    throw new Error(`MCP3008 channel must be 0 to 7, got ${channel}`);
  }
  return [0x01, ((differential ? 0 : 0x08) | channel) << 4, 0x00];
}

/** The 10-bit code of a reply: the low 2 bits of byte 1 and all of byte 2. */
export function mcp3008Code(reply: readonly number[]): number {
  if (reply.length !== 3) {
    throw new Error(`Expected a 3-byte MCP3008 reply, got ${reply.length}`);
  }
  return readBits(reply, 14, 10, false);
}

/** Input voltage of a code: `code × vref / 1024` (datasheet equation 4-1). */
export function mcp3008Volts(code: number, vref: number): number {
  return (code * vref) / 1024;
}

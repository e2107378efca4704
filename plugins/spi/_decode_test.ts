import assert from "node:assert/strict";
import { decodeField, readBits } from "./_decode.ts";
import { mcp3008Code, mcp3008Frame, mcp3008Volts } from "./_mcp3008.ts";

Deno.test("readBits() reads bit ranges across byte boundaries, MSB first", () => {
  assert.equal(readBits([0b1010_0000], 0, 3, false), 0b101);
  assert.equal(readBits([0x0f, 0xf0], 4, 8, false), 0xff);
  assert.equal(readBits([0x0f, 0xf0], 4, 8, true), -1);
  assert.equal(readBits([0x00, 0x02, 0x00], 14, 10, false), 512);
  assert.equal(readBits([0x7f, 0xff], 0, 16, true), 32767);
});

Deno.test("readBits() refuses ranges outside the frame", () => {
  assert.throws(() => readBits([0, 0], 10, 8, false), /Bits 10–17 are outside a 2-byte frame/);
  assert.throws(() => readBits([0], 0, 0, false), /Expected 1 to 48 bits, got 0/);
});

Deno.test("decodeField() applies scale and offset", () => {
  const field = { bit_offset: 8, bit_length: 8, signed: true, scale: 0.5, offset: 1 };
  assert.equal(decodeField(field, [0xaa, 0xfc]), -1);
});

interface Mcp3008Fixture {
  vref: number;
  cases: { channel: number; frame: number[]; reply: number[]; code: number; volts: number }[];
}

Deno.test("mcp3008 frames and replies match the golden fixture", async () => {
  const fixture: Mcp3008Fixture = JSON.parse(
    await Deno.readTextFile(new URL("./testcases/mcp3008.json", import.meta.url)),
  );
  for (const c of fixture.cases) {
    assert.deepEqual(mcp3008Frame(c.channel), c.frame);
    assert.equal(mcp3008Code(c.reply), c.code);
    assert.ok(Math.abs(mcp3008Volts(c.code, fixture.vref) - c.volts) < 1e-6);
  }
});

Deno.test("mcp3008Frame() refuses channels outside 0–7 and builds differential frames", () => {
  assert.throws(() => mcp3008Frame(8), /MCP3008 channel must be 0 to 7, got 8/);
  assert.deepEqual(mcp3008Frame(2, true), [0x01, 0x20, 0x00]);
  assert.throws(() => mcp3008Code([0, 0]), /Expected a 3-byte MCP3008 reply, got 2/);
});

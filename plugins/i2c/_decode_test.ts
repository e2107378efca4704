import assert from "node:assert/strict";
import { decodeRegister, readInteger } from "./_decode.ts";
import { TMP102_REGISTERS } from "./_presets.ts";

Deno.test("readInteger() honours byte order and two's complement", () => {
  assert.equal(readInteger([0x12, 0x34], "big", false), 0x1234);
  assert.equal(readInteger([0x12, 0x34], "little", false), 0x3412);
  assert.equal(readInteger([0xff, 0xfe], "big", true), -2);
  assert.equal(readInteger([0xff, 0xfe], "big", false), 65534);
  assert.equal(readInteger([0x80], "big", true), -128);
  assert.equal(readInteger([0xff, 0xff, 0xff, 0xff], "little", true), -1);
  assert.equal(readInteger([0xff, 0xff, 0xff, 0xff], "little", false), 4294967295);
  assert.equal(readInteger([0x01, 0x00, 0x00], "big", false), 65536);
});

Deno.test("readInteger() refuses empty, long and out-of-range input", () => {
  assert.throws(() => readInteger([], "big", false), /Expected 1 to 4 bytes, got 0/);
  assert.throws(() => readInteger([1, 2, 3, 4, 5], "big", false), /got 5/);
  assert.throws(() => readInteger([256], "big", false), /Byte 256 is out of range/);
});

Deno.test("decodeRegister() applies scale and offset and checks the byte count", () => {
  const spec = {
    register: 2,
    bytes: 2,
    order: "big",
    signed: true,
    scale: 0.5,
    offset: -10,
  } as const;
  assert.equal(decodeRegister(spec, [0x00, 0x64]), 40);
  assert.throws(() => decodeRegister(spec, [1]), /Register 0x02 gave 1 bytes, expected 2/);
});

interface Tmp102Fixture {
  cases: { bytes: number[]; temperature: number }[];
}

Deno.test("tmp102 preset decodes the datasheet's golden register values", async () => {
  const fixture: Tmp102Fixture = JSON.parse(
    await Deno.readTextFile(new URL("./testcases/tmp102_datasheet.json", import.meta.url)),
  );
  const spec = TMP102_REGISTERS.temperature!;
  for (const c of fixture.cases) assert.equal(decodeRegister(spec, c.bytes), c.temperature);
});

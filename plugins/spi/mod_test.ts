import assert from "node:assert/strict";
import { configSchema } from "./mod.ts";

const issues = (input: unknown) =>
  configSchema.safeParse(input).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);

Deno.test("spi config needs a preset with channels or a frame with fields inside it", () => {
  assert.deepEqual(issues({ bus: 0 }), [
    "frame: Expected a preset or a frame",
    "fields: Expected at least one field",
  ]);
  assert.deepEqual(issues({ bus: 0, preset: "mcp3008" }), [
    "channels: Expected at least one channel",
  ]);
  assert.deepEqual(
    issues({ bus: 0, frame: [0], fields: { t: { bit_offset: 4, bit_length: 8 } } }),
    ['fields: Field "t" ends past the 1-byte frame'],
  );
  assert.equal(
    issues({ bus: 0, mode: 4, preset: "mcp3008", channels: { a: { channel: 0 } } })?.length,
    1,
  );
});

Deno.test("spi mcp3008 channels default to volts", () => {
  const config = configSchema.parse({ bus: 0, preset: "mcp3008", channels: { a: { channel: 3 } } });
  assert.deepEqual(config.channels.a, {
    channel: 3,
    differential: false,
    scale: 1,
    offset: 0,
    unit: "V",
  });
  assert.equal(config.vref, 3.3);
  assert.equal(config.max_speed_hz, 1_000_000);
});

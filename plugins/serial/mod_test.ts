import assert from "node:assert/strict";
import { configSchema } from "./mod.ts";

const issues = (input: unknown) =>
  configSchema.safeParse(input).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);

Deno.test("serial config has UART defaults and parses poll durations", () => {
  const config = configSchema.parse({
    path: "/dev/ttyUSB0",
    decode: { mode: "poll", command: "READ\r\n", pattern: "T=(?<t>[0-9.]+)", interval: "2s" },
  });
  assert.equal(config.baud_rate, 9600);
  assert.equal(config.data_bits, 8);
  assert.equal(config.parity, "none");
  assert.equal(config.stop_bits, 1);
  assert.deepEqual(config.allowed_paths, []);
  assert.ok(config.decode.mode === "poll");
  assert.equal(config.decode.interval, 2000);
  assert.equal(config.decode.timeout, 500);
});

Deno.test("serial config refuses relative paths, bad framing and patterns without named groups", () => {
  assert.deepEqual(issues({ path: "ttyUSB0", decode: { mode: "json" } }), [
    "path: Expected an absolute path such as /dev/ttyUSB0",
  ]);
  assert.equal(
    issues({ path: "/dev/x", data_bits: 9, decode: { mode: "json" } })?.[0]?.startsWith(
      "data_bits",
    ),
    true,
  );
  assert.deepEqual(issues({ path: "/dev/x", decode: { mode: "regex", pattern: "T=([0-9]+)" } }), [
    "decode.pattern: Expected a valid regular expression with at least one named group (?<metric>…)",
  ]);
  assert.equal(issues({ path: "/dev/x", decode: { mode: "lines" } })?.length, 1);
});

import assert from "node:assert/strict";
import type { Sample } from "../../core/mod.ts";
import { compilePattern, type Conversions, groupNames, jsonDecoder, regexDecoder } from "./mod.ts";

interface LineCase {
  name: string;
  decode: { mode: "regex" | "json"; pattern?: string } & Partial<Conversions>;
  line: string;
  samples?: Sample[];
  error?: string;
}

const { cases }: { cases: LineCase[] } = JSON.parse(
  await Deno.readTextFile(new URL("./testcases/lines.json", import.meta.url)),
);

for (const c of cases) {
  Deno.test(`serial decoding golden case: ${c.name}`, () => {
    const conv = {
      units: c.decode.units ?? {},
      scale: c.decode.scale ?? {},
      offset: c.decode.offset ?? {},
    };
    const decode = c.decode.mode === "json"
      ? jsonDecoder("d", conv)
      : regexDecoder("d", c.decode.pattern!, conv);
    if (c.error !== undefined) {
      assert.throws(() => decode(c.line, 1000), { message: c.error });
    } else {
      assert.deepEqual(decode(c.line, 1000), c.samples);
    }
  });
}

Deno.test("groupNames() lists the named groups in order", () => {
  assert.deepEqual(groupNames(/T=(?<t>\d+) (x) P=(?<p_1>\d+)/), ["t", "p_1"]);
});

Deno.test("compilePattern() refuses invalid patterns and patterns without named groups", () => {
  assert.throws(() => compilePattern("(?<a>["), { message: 'Invalid regular expression "(?<a>["' });
  assert.throws(() => compilePattern("T=([0-9]+)"), /has no named group/);
});

Deno.test("regexDecoder() refuses a group that matched text that is not a number", () => {
  const decode = regexDecoder("d", "T=(?<t>\\S*)", { units: {}, scale: {}, offset: {} });
  assert.throws(() => decode("T=abc", 1), {
    message: 'Group "t" of line "T=abc" is not a number: "abc"',
  });
});

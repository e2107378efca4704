import assert from "node:assert/strict";
import { globMatcher } from "./glob.ts";

Deno.test("globMatcher() matches * runs, ? single characters and literal text", () => {
  assert.ok(globMatcher("*")("anything"));
  assert.ok(globMatcher("boiler_*")("boiler_12"));
  assert.ok(!globMatcher("boiler_*")("pump_1"));
  assert.ok(globMatcher("line?")("line2"));
  assert.ok(!globMatcher("line?")("line22"));
  assert.ok(globMatcher("a.b")("a.b"));
  assert.ok(!globMatcher("a.b")("axb"), "dots are literal");
});

import assert from "node:assert/strict";
import { closest, didYouMean, editDistance, quoteList, unknownKeyMessage } from "./suggest.ts";

Deno.test("editDistance() counts insertions, deletions, substitutions and swaps as one edit", () => {
  assert.equal(editDistance("workers", "workers"), 0);
  assert.equal(editDistance("workrs", "workers"), 1);
  assert.equal(editDistance("workerss", "workers"), 1);
  assert.equal(editDistance("wurkers", "workers"), 1);
  assert.equal(editDistance("wokrers", "workers"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("abc", ""), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
});

Deno.test("closest() suggests a candidate only when it is a likely typo", () => {
  assert.equal(closest("simulatd", ["serial", "simulated"]), "simulated");
  assert.equal(closest("boilr", ["boiler", "pump"]), "boiler");
  assert.equal(closest("Workers", ["workers"]), "workers");
  assert.equal(closest("foo", ["role", "log", "plugins"]), undefined);
  assert.equal(closest("a", ["b"]), undefined);
  assert.equal(closest("x", []), undefined);
});

Deno.test("closest() prefers the nearest candidate", () => {
  assert.equal(closest("max_wiat", ["max_samples", "max_wait"]), "max_wait");
  assert.equal(closest("retyr", ["rate", "retry"]), "retry");
});

Deno.test("didYouMean() gives a hint or nothing", () => {
  assert.equal(didYouMean("queu", ["queue"]), '; did you mean "queue"?');
  assert.equal(didYouMean("zzz", ["queue"]), "");
});

Deno.test("quoteList() quotes and joins names", () => {
  assert.equal(quoteList(["a", "b"]), '"a", "b"');
  assert.equal(quoteList([]), "");
});

Deno.test("unknownKeyMessage() suggests a close key or lists the valid ones", () => {
  assert.equal(
    unknownKeyMessage("workrs", ["from", "via", "workers"]),
    'Unknown key "workrs"; did you mean "workers"?',
  );
  assert.equal(unknownKeyMessage("foo", ["a", "b"]), 'Unknown key "foo"; valid keys are "a", "b"');
  assert.equal(
    unknownKeyMessage("foo", ["rate"]),
    'Unknown key "foo"; the only valid key is "rate"',
  );
  assert.equal(unknownKeyMessage("size", []), 'Unknown key "size"; this block takes no keys');
});

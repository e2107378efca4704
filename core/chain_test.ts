import assert from "node:assert/strict";
import { type ChainLink, outputProblem, runChain } from "./chain.ts";
import { isPermanent } from "./errors.ts";
import type { HandlerInstance } from "./plugin.ts";
import type { Sample } from "./sample.ts";
import { handlerContext } from "./testing.ts";

const sample: Sample = { device: "boiler", metric: "temperature", value: 21.5, ts: 1 };

const link = (name: string, handle: HandlerInstance["handle"]): ChainLink => ({
  name,
  instance: { handle },
});

Deno.test("runChain() fails for good, naming the handler and field, when a handler returns string values", async () => {
  let reached = false;
  const chain = [
    link("to_text", (samples) => samples.map((s) => ({ ...s, value: String(s.value) }) as never)),
    link("after", () => {
      reached = true;
    }),
  ];
  await assert.rejects(runChain(chain, [sample], handlerContext()), (error: Error) => {
    assert.ok(isPermanent(error), "a permanent failure");
    assert.equal(
      error.message,
      'Handler "to_text" returned an invalid sample [0]: "value" must be a finite number, ' +
        'not the string "21.5"',
    );
    return true;
  });
  assert.equal(reached, false, "the next handler never sees it");
});

Deno.test("outputProblem() names what is wrong: not an array, a field, or nothing", () => {
  assert.match(outputProblem("h", { samples: [] })!, /^Handler "h" returned object, not an array/);
  assert.match(outputProblem("h", [{ ...sample, ts: "now" }])!, /\[0\]: "ts" must be a finite/);
  assert.match(outputProblem("h", [sample, { ...sample, value: null }])!, /\[1\]: .* not null$/);
  assert.equal(outputProblem("h", [sample, { ...sample, value: 2 }]), undefined);
  assert.equal(outputProblem("h", []), undefined);
});

Deno.test("runChain() passes on what a handler returned unchanged or nothing at all without checking it again", async () => {
  const given = [{ ...sample }];
  const out = await runChain(
    [link("same", (s) => s), link("nothing", () => undefined)],
    given,
    handlerContext(),
  );
  assert.equal(out, given);
});

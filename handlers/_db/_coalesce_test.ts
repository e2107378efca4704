import assert from "node:assert/strict";
import { Coalescer, settle } from "./_coalesce.ts";

Deno.test("Coalescer runs a lone call at once and joins the calls made meanwhile into one batch", async () => {
  const batches: number[][] = [];
  const gate = Promise.withResolvers<void>();
  const c = new Coalescer<number, number>(async (inputs) => {
    batches.push(inputs);
    if (batches.length === 1) await gate.promise;
    return inputs.map((x) => ({ ok: true, value: x * 10 }));
  }, { inFlight: 1, maxCalls: 10 });
  const first = c.call(1);
  const rest = [c.call(2), c.call(3), c.call(4)];
  gate.resolve();
  assert.deepEqual(await Promise.all([first, ...rest]), [10, 20, 30, 40]);
  assert.deepEqual(batches, [[1], [2, 3, 4]]);
});

Deno.test("Coalescer keeps calls that do not fit for a later batch and rejects only failed calls", async () => {
  const batches: string[][] = [];
  const gate = Promise.withResolvers<void>();
  const c = new Coalescer<string, string>(async (inputs) => {
    batches.push(inputs);
    if (batches.length === 1) await gate.promise;
    return await Promise.all(
      inputs.map((x) =>
        settle(() => x === "bad" ? Promise.reject(new Error("bad input")) : Promise.resolve(x))
      ),
    );
  }, { inFlight: 1, maxCalls: 10, fits: (batch, next) => !batch.includes(next) });
  const calls = ["a", "b", "a", "bad"].map((x) => c.call(x).catch((e: Error) => e.message));
  const later = c.call("c");
  gate.resolve();
  assert.deepEqual(await Promise.all([...calls, later]), ["a", "b", "a", "bad input", "c"]);
  assert.deepEqual(batches, [["a"], ["b", "a", "bad", "c"]]);
});

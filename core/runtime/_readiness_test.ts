import assert from "node:assert/strict";
import { RateWindow } from "./_readiness.ts";

Deno.test("RateWindow gives each counter's increase per second over the last ten seconds", () => {
  const w = new RateWindow();
  assert.deepEqual(w.rates("p", [0, 0], 0), [0, 0], "one reading: no rate yet");
  assert.deepEqual(w.rates("p", [10, 4], 500), [20, 8], "readings within a second are not kept");
  assert.deepEqual(w.rates("p", [20, 4], 1000), [20, 4]);
  for (let t = 2000; t < 12_000; t += 1000) w.rates("p", [20, 4], t);
  assert.deepEqual(w.rates("p", [20, 4], 12_000), [0, 0], "old readings leave the window");
  assert.deepEqual(w.rates("q", [5], 12_000), [0], "keys are separate");
});

Deno.test("RateWindow.retain forgets other keys", () => {
  const w = new RateWindow();
  w.rates("gone", [0], 0);
  w.rates("kept", [0], 0);
  w.retain(new Set(["kept"]));
  assert.deepEqual(w.rates("gone", [10], 1000), [0], "starts again");
  assert.deepEqual(w.rates("kept", [10], 1000), [10]);
});

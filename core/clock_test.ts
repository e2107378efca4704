import assert from "node:assert/strict";
import { settledOrAborted } from "./clock.ts";

Deno.test("settledOrAborted() is true when the work settles first and false when the signal aborts", async () => {
  const stop = new AbortController();
  assert.equal(await settledOrAborted(Promise.resolve(1), stop.signal), true);
  const never = new Promise<void>(() => {});
  const waiting = settledOrAborted(never, stop.signal);
  stop.abort();
  assert.equal(await waiting, false);
  assert.equal(await settledOrAborted(never, stop.signal), false, "already aborted: at once");
  await assert.rejects(
    settledOrAborted(Promise.reject(new Error("boom")), new AbortController().signal),
    /boom/,
  );
});

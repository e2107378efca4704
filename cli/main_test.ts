import assert from "node:assert/strict";
import { REPEATED_STOP_SIGNAL_MS, stopSignalMeaning } from "./main.ts";

Deno.test("stopSignalMeaning() takes copies within the window as the same stop and a later one as exit", () => {
  assert.equal(stopSignalMeaning(undefined, 5_000), "stop");
  assert.equal(stopSignalMeaning(5_000, 5_000), "same stop");
  assert.equal(stopSignalMeaning(5_000, 5_000 + REPEATED_STOP_SIGNAL_MS - 1), "same stop");
  assert.equal(stopSignalMeaning(5_000, 5_000 + REPEATED_STOP_SIGNAL_MS), "exit now");
  assert.equal(stopSignalMeaning(5_000, 60_000), "exit now");
});

import assert from "node:assert/strict";
import type { Sample } from "../sample.ts";
import { Tap } from "./tap.ts";

const sample = (device: string, metric: string, value = 0): Sample => ({
  device,
  metric,
  value,
  ts: 0,
});

Deno.test("tap filters by pipeline, device and metric on the server side", () => {
  const tap = new Tap(() => 0);
  const got: Sample[] = [];
  tap.subscribe({ pipeline: "p", device: "a", metric: "t" }, 1000, (s) => got.push(...s));
  tap.offer("other", [sample("a", "t")]);
  tap.offer("p", [sample("a", "t", 1), sample("b", "t"), sample("a", "h")]);
  assert.deepEqual(got.map((s) => s.value), [1]);
});

Deno.test("tap caps each subscriber's rate and reports what it skipped", () => {
  let now = 0;
  const tap = new Tap(() => now);
  const calls: Array<{ n: number; skipped: number }> = [];
  tap.subscribe({}, 10, (s, skipped) => calls.push({ n: s.length, skipped }));
  tap.offer("p", Array.from({ length: 100 }, () => sample("a", "t")));
  tap.offer("p", [sample("a", "t")]); // bucket empty: skipped
  now += 500; // half a second refills 5
  tap.offer("p", Array.from({ length: 20 }, () => sample("a", "t")));
  assert.deepEqual(calls, [{ n: 10, skipped: 90 }, { n: 5, skipped: 16 }]);
});

Deno.test("detaching a tap subscriber stops delivery and frees it", () => {
  const tap = new Tap();
  let n = 0;
  const off = tap.subscribe({}, 100, () => n++);
  tap.offer("p", [sample("a", "t")]);
  off();
  tap.offer("p", [sample("a", "t")]);
  assert.equal(n, 1);
  assert.equal(tap.size, 0);
});

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

Deno.test("tap device and metric filters are globs", () => {
  const tap = new Tap(() => 0);
  const got: string[] = [];
  tap.subscribe(
    { device: "boiler_*", metric: "t?mp" },
    1000,
    (s) => got.push(...s.map((x) => `${x.device}/${x.metric}`)),
  );
  tap.offer("p", [
    sample("boiler_1", "temp"),
    sample("boiler_22", "tamp"),
    sample("pump_1", "temp"),
    sample("boiler_1", "temperature"),
  ]);
  assert.deepEqual(got, ["boiler_1/temp", "boiler_22/tamp"]);
});

Deno.test("tap subscribers get only their stage: input by default, a handler's output, dead letters", () => {
  const tap = new Tap(() => 0);
  const got: Record<string, string[]> = { input: [], after: [], dead: [] };
  const values = (s: Sample[]) => s.map((x) => String(x.value));
  tap.subscribe({}, 1000, (s) => got.input!.push(...values(s)));
  tap.subscribe({ stage: "handler:scale" }, 1000, (s) => got.after!.push(...values(s)));
  tap.subscribe(
    { stage: "dead_letters" },
    1000,
    (s, _, reason) => got.dead!.push(...values(s).map((v) => `${v}: ${reason}`)),
  );
  tap.offer("p", [sample("a", "t", 1)]);
  tap.offer("p", [sample("a", "t", 10)], "handler:scale");
  tap.offer("p", [sample("a", "t", 20)], "handler:other");
  tap.offer("p", [sample("a", "t", 2)], "dead_letters", "Value out of range");
  assert.deepEqual(got, { input: ["1"], after: ["10"], dead: ["2: Value out of range"] });
});

import assert from "node:assert/strict";
import type { Sample } from "../sample.ts";
import type { DeviceStatus } from "../runtime/devices.ts";
import { MAX_LAST_VALUES, OVERVIEW_IDLE_MS, overviewRoutes } from "./_overview.ts";
import { LastValues } from "./_overview.ts";

const BOILER: DeviceStatus = {
  name: "boiler",
  type: "simulated",
  pipeline: "main",
  state: "up",
  samples: 40,
  read_errors: 0,
  restarts: 0,
  since: 0,
};

function fixture() {
  let now = 1_000;
  let listener: ((samples: readonly Sample[]) => void) | undefined;
  let detached = 0;
  const app = overviewRoutes({
    brokerDepths: () =>
      Promise.resolve([{
        name: "mem",
        pipelines: ["main"],
        shared: false,
        durable: false,
        depth: { queued: 3, inflight: 1, delayed: 0, dead: 2 },
      }]),
    devices: () => [BOILER],
    deviceRates: () => ({ boiler: 20 }),
    watch(l) {
      listener = l;
      return () => {
        listener = undefined;
        detached++;
      };
    },
    now: () => now,
  });
  return {
    app,
    emit: (samples: Sample[]) => listener?.(samples),
    watching: () => listener !== undefined,
    detached: () => detached,
    advance: (ms: number) => now += ms,
  };
}

const sample = (metric: string, value: number, ts: number): Sample => ({
  device: "boiler",
  metric,
  value,
  ts,
  unit: "C",
});

Deno.test("overview gives broker depths, device rates and the last value of each metric", async () => {
  const f = fixture();
  const first = await (await f.app.request("/overview")).json();
  assert.deepEqual(first.brokers[0].depth, { queued: 3, inflight: 1, delayed: 0, dead: 2 });
  assert.equal(first.devices[0].rate, 20);
  assert.deepEqual(first.devices[0].last, [], "nothing seen before the first request");
  assert.equal(f.watching(), true);
  f.emit([sample("temperature", 50, 1), sample("pressure", 2, 1), sample("temperature", 51, 2)]);
  const second = await (await f.app.request("/overview")).json();
  assert.equal(second.devices[0].state, "up");
  assert.deepEqual(second.devices[0].last, [
    { metric: "pressure", value: 2, unit: "C", ts: 1 },
    { metric: "temperature", value: 51, unit: "C", ts: 2 },
  ]);
});

Deno.test("overview stops tapping once nobody asked for a minute, and taps again when asked", async () => {
  const f = fixture();
  await (await f.app.request("/overview")).body?.cancel();
  f.advance(OVERVIEW_IDLE_MS + 1);
  f.emit([sample("temperature", 50, 1)]);
  assert.equal(f.watching(), false);
  assert.equal(f.detached(), 1);
  const again = await (await f.app.request("/overview")).json();
  assert.deepEqual(again.devices[0].last, [], "samples after the idle spell are not recorded");
  assert.equal(f.watching(), true);
});

Deno.test("LastValues remembers a bounded number of series, keeping those it has", () => {
  const values = new LastValues();
  const many: Sample[] = [];
  for (let i = 0; i < MAX_LAST_VALUES + 5; i++) {
    many.push({ device: `d${i % 100}`, metric: `m${i}`, value: i, ts: i });
  }
  values.record(many);
  values.record([{ device: "d0", metric: "m0", value: -1, ts: 99 }]);
  values.record([{ device: "new", metric: "m", value: 1, ts: 1 }]);
  assert.deepEqual(values.of("d0")[0], { metric: "m0", value: -1, ts: 99 });
  assert.deepEqual(values.of("new"), []);
  const total = Array.from({ length: 100 }, (_, i) => values.of(`d${i}`).length)
    .reduce((a, b) => a + b);
  assert.equal(total, MAX_LAST_VALUES);
});

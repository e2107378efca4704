import assert from "node:assert/strict";
import { adminFixture, stopQuietly } from "./_fixtures/admin.ts";
import { recording } from "./_fixtures/plugins.ts";
import { waitFor } from "./_fixtures/runtime.ts";

/** boiler_1 and boiler_2 feed a chain that scales, refuses what was 3 (30 after scale), records. */
const CONFIG = `
devices:
  boiler_1: { type: fixed, config: { count: 0 } }
  boiler_2: { type: fixed, config: { count: 0 } }
  pump: { type: fixed, config: { count: 0 } }
brokers:
  mem: { type: memory }
handlers:
  scale: { type: scale, config: { factor: 10 } }
  poison: { type: poison, config: { value: 30 } }
  rec: { type: record, config: { key: tap_stages } }
pipelines:
  main:
    from: [boiler_1, boiler_2, pump]
    via: mem
    handlers: [scale, poison, rec]
    batch: { max_samples: 100, max_wait: 5ms }
`;

interface TapEvent {
  stage: string;
  samples: { device: string; value: number }[];
  skipped: number;
  reason?: string;
}

/** Opens a tap and reads its events as they come. */
async function openTap(
  app: { request: (url: string, init?: RequestInit) => Response | Promise<Response> },
  query: string,
) {
  const controller = new AbortController();
  const res = await app.request(`/api/v1/tap?${query}`, { signal: controller.signal });
  assert.equal(res.status, 200, await (res.status === 200 ? "" : res.text()));
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const events: TapEvent[] = [];
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      text += decoder.decode(value);
      let end;
      while ((end = text.indexOf("\n\n")) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const data = block.match(/^event: samples\ndata: (.*)$/m);
        if (data) events.push(JSON.parse(data[1]!));
      }
    }
  })();
  return {
    events,
    async close() {
      controller.abort();
      await reader.cancel().catch(() => {});
      await pump;
    },
  };
}

const values = (events: TapEvent[]) =>
  events.flatMap((e) => e.samples.map((s) => `${s.device}=${s.value}`)).sort();

Deno.test("tap shows a running pipeline before the chain, after a named handler and its dead letters, with glob filters", async () => {
  const { app, runtime } = await adminFixture(CONFIG);
  runtime.start();
  const input = await openTap(app, "pipeline=main&device=boiler_*");
  const scaled = await openTap(app, "handler=scale&device=boiler_?&metric=temp*");
  const dead = await openTap(app, "stage=dead_letters");
  await waitFor(() => runtime.tap.size === 3, "three subscribers");
  const res = await app.request("/api/v1/samples", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify([
      { device: "boiler_1", metric: "temperature", value: 2 },
      { device: "boiler_2", metric: "temperature", value: 3 },
      { device: "pump", metric: "temperature", value: 4 },
      { device: "boiler_1", metric: "pressure", value: 5 },
    ]),
  });
  assert.equal(res.status, 202);
  await waitFor(() => recording("tap_stages").seen.length === 3, "three samples recorded");
  await waitFor(() => dead.events.length > 0, "the dead letter on the tap");
  await waitFor(() => values(scaled.events).length === 2, "the scaled samples");
  assert.deepEqual(values(input.events), ["boiler_1=2", "boiler_1=5", "boiler_2=3"]);
  // After scale: its output (values times 10), only temperature of boiler_N.
  assert.deepEqual(values(scaled.events), ["boiler_1=20", "boiler_2=30"]);
  assert.ok(scaled.events.every((e) => e.stage === "handler:scale"));
  // Dead letters: the sample poison refused, as it is kept in the DLQ, with the reason.
  assert.deepEqual(values(dead.events), ["boiler_2=3"]);
  assert.match(dead.events[0]!.reason ?? "", /Cannot take value 30/);
  for (const tap of [input, scaled, dead]) await tap.close();
  await waitFor(() => runtime.tap.size === 0, "the subscriptions to be freed");
  await stopQuietly(runtime);
});

Deno.test("tap answers 404 for an unknown pipeline or stage and 400 for a stage that contradicts itself", async () => {
  const { app, runtime } = await adminFixture(CONFIG);
  const cases: [string, number, RegExp][] = [
    ["pipeline=nope", 404, /No pipeline "nope"/],
    ["handler=nope", 404, /No handler "nope"/],
    ["pipeline=main&handler=nope", 404, /No handler "nope" in pipeline "main"/],
    ["stage=handler", 400, /needs handler=/],
    ["stage=dead_letters&handler=scale", 400, /taps stage "handler"/],
    ["stage=everything", 400, /stage/],
  ];
  for (const [query, status, detail] of cases) {
    const res = await app.request(`/api/v1/tap?${query}`);
    assert.equal(res.status, status, query);
    assert.equal(res.headers.get("content-type"), "application/problem+json", query);
    assert.match((await res.json()).detail, detail, query);
  }
  assert.equal(runtime.tap.size, 0);
  await stopQuietly(runtime);
});

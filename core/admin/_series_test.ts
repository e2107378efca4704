import assert from "node:assert/strict";
import type { SeriesAnswer, SeriesQuery } from "../plugin.ts";
import { MAX_SERIES_POINTS, parseTime, seriesRoutes, type SeriesSource } from "./_series.ts";

const NOW = 1_700_000_000_000;

function desk(sources: SeriesSource[]) {
  return seriesRoutes({ sources: () => sources, now: () => NOW });
}

function source(name: string, answer: (q: SeriesQuery) => SeriesAnswer | undefined) {
  const asked: SeriesQuery[] = [];
  return {
    asked,
    source: {
      name,
      series: (q: SeriesQuery) => {
        asked.push(q);
        return Promise.resolve(answer(q));
      },
    },
  };
}

Deno.test("series answers 400 problem+json for every malformed parameter", async () => {
  const app = desk([source("store", () => undefined).source]);
  for (
    const query of [
      "metric=t",
      "device=d",
      "device=d&metric=t&from=yesterday",
      "device=d&metric=t&to=12h",
      "device=d&metric=t&from=2000&to=1000",
      "device=d&metric=t&step=fast",
      "device=d&metric=t&step=-1",
      "device=d&metric=t&limit=0",
      `device=d&metric=t&limit=${MAX_SERIES_POINTS + 1}`,
    ]
  ) {
    const res = await app.request(`/series?${query}`);
    assert.equal(res.status, 400, query);
    assert.equal(res.headers.get("content-type"), "application/problem+json", query);
    assert.equal((await res.json()).title, "Invalid series query", query);
  }
});

Deno.test("series defaults to the last hour of samples, at most 10000 points", async () => {
  const store = source("store", (q) => ({
    source: "samples",
    step_ms: q.step,
    points: [[q.from, 1]],
    truncated: false,
  }));
  const res = await desk([store.source]).request("/series?device=d&metric=t");
  assert.equal(res.status, 200);
  assert.deepEqual(store.asked, [{
    device: "d",
    metric: "t",
    from: NOW - 3_600_000,
    to: NOW,
    step: 0,
    limit: MAX_SERIES_POINTS,
  }]);
  assert.deepEqual(await res.json(), {
    device: "d",
    metric: "t",
    from: NOW - 3_600_000,
    to: NOW,
    step_ms: 0,
    source: "samples",
    truncated: false,
    points: [[NOW - 3_600_000, 1]],
  });
});

Deno.test("series takes ISO dates and durations, and prefers aggregates on a tie", async () => {
  const point = (q: SeriesQuery) => [[q.from, 2, 1, 3, 4] as const];
  const store = source("store", (q) => ({
    source: "samples",
    step_ms: q.step,
    points: point(q),
    truncated: false,
  }));
  const aggregate = source("aggregate", (q) => ({
    source: "aggregates",
    step_ms: q.step,
    points: point(q),
    truncated: false,
  }));
  const res = await desk([store.source, aggregate.source]).request(
    "/series?device=d&metric=t&from=2023-11-14T22:00:00Z&to=1700000000000&step=1m",
  );
  const body = await res.json();
  assert.equal(body.source, "aggregates");
  assert.equal(body.step_ms, 60_000);
  assert.equal(aggregate.asked[0]!.from, Date.parse("2023-11-14T22:00:00Z"));
});

Deno.test("series takes the answer with the most points (another pipeline's store knows none)", async () => {
  const empty = source("aggregate", (q) => ({
    source: "aggregates",
    step_ms: q.step,
    points: [],
    truncated: false,
  }));
  const full = source("store", (q) => ({
    source: "samples",
    step_ms: q.step,
    points: [[1, 1, 1, 1, 1]],
    truncated: false,
  }));
  const body = await (await desk([empty.source, full.source]).request(
    "/series?device=d&metric=t&step=10s",
  )).json();
  assert.equal(body.source, "samples");
});

Deno.test("series is 404 without a handler that reads series, 503 when every read fails", async () => {
  const none = await desk([]).request("/series?device=d&metric=t");
  assert.equal(none.status, 404);
  const failing = {
    name: "store",
    series: () => Promise.reject(new Error("Connection refused")),
  };
  const down = await desk([failing]).request("/series?device=d&metric=t");
  assert.equal(down.status, 503);
  assert.match((await down.json()).detail, /store: Connection refused/);
});

Deno.test("parseTime() takes ms since epoch and ISO 8601 dates, nothing else", () => {
  assert.equal(parseTime("1700000000000"), 1_700_000_000_000);
  assert.equal(parseTime("2023-11-14T22:13:20Z"), 1_700_000_000_000);
  assert.equal(parseTime("yesterday"), undefined);
  assert.equal(parseTime("2023-13-45"), undefined);
});

import assert from "node:assert/strict";
import { hopOf, parseScrape } from "./_hops.ts";

const scrape = (n: number, sum: number) =>
  parseScrape(`# TYPE telemetry_stage_seconds histogram
telemetry_stage_seconds_bucket{le="0.001",pipeline="bench",stage="broker"} ${n / 2}
telemetry_stage_seconds_bucket{le="0.01",pipeline="bench",stage="broker"} ${n}
telemetry_stage_seconds_bucket{le="+Inf",pipeline="bench",stage="broker"} ${n}
telemetry_stage_seconds_sum{pipeline="bench",stage="broker"} ${sum}
telemetry_stage_seconds_count{pipeline="bench",stage="broker"} ${n}
telemetry_samples_processed_total{pipeline="bench"} ${n * 10}
`);

Deno.test("hopOf() gives mean and interpolated percentiles of a histogram between two scrapes", () => {
  const [before, after] = [scrape(100, 0.2), scrape(300, 1.2)];
  const key = 'telemetry_stage_seconds{stage="broker"}';
  const hop = hopOf(before.get(key), after.get(key), 1000);
  assert.deepEqual(hop, {
    count: 200,
    mean_ms: 5,
    p50_ms: 1,
    p99_ms: 9.82,
    us_per_sample: 1000,
  });
  assert.equal(after.get("telemetry_samples_processed_total")?.count, 3000);
});

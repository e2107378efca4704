import assert from "node:assert/strict";
import type { HandlerContext, HandlerInstance, Sample } from "../../core/mod.ts";
import { FakeClock, recordingLogger, testContext } from "../../core/testing.ts";
import digest from "./mod.ts";

async function setup(input: unknown = {}) {
  const clock = new FakeClock();
  const controller = new AbortController();
  const { logger, lines } = recordingLogger();
  const handler = await digest.create(
    digest.config.parse(input),
    testContext({ name: "digest", clock, logger, signal: controller.signal }),
  );
  const ctx: HandlerContext = {
    task: { id: "t1", type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 },
    attempt: 1,
    pipeline: "main",
    signal: controller.signal,
    clock,
    publish() {},
    published: () => [],
  };
  const handle = (samples: Sample[]) => handler.handle(samples, ctx);
  return { clock, controller, lines, handler, handle };
}

function sample(device: string, metric: string, value: number): Sample {
  return { device, metric, value, ts: 0 };
}

function digests(lines: Record<string, unknown>[]) {
  return lines.filter((l) => l.msg === "Digest");
}

async function shutdown(handler: HandlerInstance, controller: AbortController) {
  controller.abort();
  await handler.close?.();
}

Deno.test("digest reports counts, per-metric statistics, devices and rate", async () => {
  const { clock, controller, lines, handler, handle } = await setup();
  const result = handle([
    sample("boiler", "temperature", 1),
    sample("boiler", "temperature", 2),
    sample("boiler", "humidity", 10),
  ]);
  assert.equal(result, undefined, "samples pass on unchanged");
  handle([sample("chiller", "temperature", 6), sample("boiler", "humidity", 30)]);
  await clock.advance(10_000);
  const [line, ...rest] = digests(lines);
  assert.equal(rest.length, 0);
  assert.equal(line!.level, "info");
  assert.deepEqual(
    { ...line, time: undefined },
    {
      time: undefined,
      level: "info",
      msg: "Digest",
      samples: 5,
      tasks: 2,
      rate: 0.5,
      devices: 2,
      metrics: {
        temperature: { count: 3, min: 1, mean: 3, max: 6 },
        humidity: { count: 2, min: 10, mean: 20, max: 30 },
      },
      window_ms: 10_000,
      total_samples: 5,
    },
  );
  await shutdown(handler, controller);
});

Deno.test("digest keeps statistics right when metrics and devices interleave", async () => {
  const { clock, controller, lines, handler, handle } = await setup({ interval: "1s" });
  const batch: Sample[] = [];
  for (let i = 0; i < 100; i++) {
    batch.push(sample(`d${i % 3}`, i % 2 === 0 ? "a" : "b", i));
  }
  handle(batch);
  await clock.advance(1_000);
  const [line] = digests(lines);
  assert.equal(line!.devices, 3);
  assert.deepEqual(line!.metrics, {
    a: { count: 50, min: 0, mean: 49, max: 98 },
    b: { count: 50, min: 1, mean: 50, max: 99 },
  });
  await shutdown(handler, controller);
});

Deno.test("digest logs every interval, each window on its own, and skips idle windows", async () => {
  const { clock, controller, lines, handler, handle } = await setup({ interval: "5s" });
  handle([sample("a", "m", 1)]);
  await clock.advance(4_999);
  assert.equal(digests(lines).length, 0);
  await clock.advance(1);
  assert.equal(digests(lines).length, 1);
  await clock.advance(5_000); // idle window: nothing logged
  assert.equal(digests(lines).length, 1);
  handle([sample("a", "m", 7), sample("a", "m", 9)]);
  await clock.advance(5_000);
  const second = digests(lines)[1]!;
  assert.equal(second.samples, 2);
  assert.equal(second.total_samples, 3);
  assert.equal(second.window_ms, 5_000);
  assert.deepEqual(second.metrics, { m: { count: 2, min: 7, mean: 8, max: 9 } });
  await shutdown(handler, controller);
});

Deno.test("digest flush logs a final digest only when something is unreported", async () => {
  const { clock, controller, lines, handler, handle } = await setup();
  handle([sample("a", "m", 1)]);
  await clock.advance(10_000);
  await handler.flush!();
  assert.equal(digests(lines).length, 1, "nothing new since the digest");
  handle([sample("a", "m", 4)]);
  await clock.advance(2_000);
  await handler.flush!();
  const final = digests(lines)[1]!;
  assert.equal(final.final, true);
  assert.equal(final.samples, 1);
  assert.equal(final.rate, 0.5);
  await shutdown(handler, controller);
});

Deno.test("digest caps the metrics and devices it tracks", async () => {
  const { clock, controller, lines, handler, handle } = await setup({
    max_metrics: 2,
    max_devices: 1,
  });
  handle([
    sample("a", "m1", 1),
    sample("b", "m2", 2),
    sample("a", "m3", 3),
    sample("c", "m3", 4),
    sample("a", "m1", 5),
  ]);
  await clock.advance(10_000);
  const [line] = digests(lines);
  assert.equal(line!.samples, 5);
  assert.deepEqual(Object.keys(line!.metrics as object), ["m1", "m2"]);
  assert.equal(line!.untracked_samples, 2);
  assert.equal(line!.devices, 1);
  assert.equal(line!.devices_capped, true);
  await shutdown(handler, controller);
});

Deno.test("digest timer ends when the signal aborts or the handler closes", async () => {
  const aborted = await setup();
  assert.equal(aborted.clock.pending, 1);
  aborted.controller.abort();
  await aborted.clock.advance(0);
  assert.equal(aborted.clock.pending, 0);
  await aborted.handler.close!();

  const closed = await setup();
  await closed.handler.close!();
  assert.equal(closed.clock.pending, 0);
  closed.controller.abort();
});

Deno.test("digest config has defaults and rejects unknown fields", () => {
  assert.deepEqual(digest.config.parse({}), {
    interval: 10_000,
    max_metrics: 1000,
    max_devices: 1000,
  });
  assert.equal(digest.config.safeParse({ every: "1s" }).success, false);
  assert.equal(digest.config.safeParse({ interval: "0s" }).success, false);
});

Deno.test("digest README documents every config field with its description", async () => {
  const readme = await Deno.readTextFile(new URL("./README.md", import.meta.url));
  for (const [key, field] of Object.entries(digest.config.shape)) {
    assert.ok(readme.includes(`\`${key}\``), `README lacks field ${key}`);
    assert.ok(field.description && readme.includes(field.description), `README lacks ${key}`);
  }
});

Deno.test("digest config refuses an interval no timer can hold", () => {
  const result = digest.config.safeParse({ interval: "30d" });
  assert.equal(result.success, false);
  assert.match(JSON.stringify(result.error?.issues), /at most 2147483647ms/);
});

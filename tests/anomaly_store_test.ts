import assert from "node:assert/strict";
import type { Sample } from "../core/mod.ts";
import { FakeClock, handlerContext, testContext } from "../core/testing.ts";
import { openDatabase } from "../handlers/_db/mod.ts";
import anomaly from "../handlers/anomaly/mod.ts";

Deno.test("anomaly stores each anomaly once in PGlite and marks it resolved", async () => {
  const dir = await Deno.makeTempDir({ prefix: "anomaly-store-" });
  const clock = new FakeClock();
  const ctx = testContext({ clock, baseDir: dir });
  const config = anomaly.config.parse({
    data_dir: "pg",
    rules: [{ kind: "threshold", metric: "temperature", above: 90, severity: "critical" }],
  });
  const handler = await anomaly.create(config, ctx);
  const db = await openDatabase(config, ctx);
  try {
    const t0 = 1_700_000_000_000;
    const batch: Sample[] = [80, 95, 97, 85].map((value, i) => ({
      device: "boiler",
      metric: "temperature",
      value,
      ts: t0 + i * 1000,
    }));
    await handler.handle(batch, handlerContext({ pipeline: "main", clock }));
    await handler.handle(batch, handlerContext({ pipeline: "main", clock })); // redelivered
    const { rows } = await db.query(
      "SELECT id, device, metric, value, expected_low, expected_high, score, rule, severity, " +
        "extract(epoch from ts) * 1000 AS ts_ms, resolved_at IS NOT NULL AS resolved " +
        "FROM anomalies",
    );
    assert.equal(rows.length, 1);
    const row = rows[0]!;
    assert.equal(row.device, "boiler");
    assert.equal(row.metric, "temperature");
    assert.equal(Number(row.value), 95);
    assert.equal(row.expected_low, null);
    assert.equal(Number(row.expected_high), 90);
    assert.equal(Number(row.score), 5);
    assert.equal(row.rule, "threshold:temperature");
    assert.equal(row.severity, "critical");
    assert.equal(Number(row.ts_ms), t0 + 1000);
    assert.equal(row.resolved, true);
  } finally {
    await handler.close?.();
    await db.release();
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { systemClock } from "../../core/mod.ts";
import { brokerConformance, FakeClock, testContext } from "../../core/testing.ts";
import sqlite from "./mod.ts";

async function tempDb(): Promise<{ dir: string; path: string; remove(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "sqlite-broker-" });
  return { dir, path: `${dir}/broker.db`, remove: () => Deno.remove(dir, { recursive: true }) };
}

brokerConformance("sqlite (fake clock)", async () => {
  const { path, remove } = await tempDb();
  const clock = new FakeClock();
  const broker = await sqlite.create(sqlite.config.parse({ path }), testContext({ clock }));
  return { broker, clock, cleanup: async () => (await broker.close(), await remove()) };
});

brokerConformance("sqlite (real clock)", async () => {
  const { path, remove } = await tempDb();
  const broker = await sqlite.create(
    sqlite.config.parse({ path }),
    testContext({ clock: systemClock }),
  );
  return { broker, clock: null, cleanup: async () => (await broker.close(), await remove()) };
});

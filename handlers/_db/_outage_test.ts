import assert from "node:assert/strict";
import type { Driver, QueryResult } from "./_drivers.ts";
import { watchOutages } from "./_outage.ts";

/** A driver whose statements settle when the test says so. */
function manualDriver() {
  const pending: { resolve(r: QueryResult): void; reject(e: unknown): void }[] = [];
  const driver: Driver = {
    kind: "postgres",
    query: () => new Promise((resolve, reject) => pending.push({ resolve, reject })),
    exec: () => Promise.resolve([]),
    close: () => Promise.resolve(),
  };
  return { driver, pending };
}

function refused(): Error {
  return Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
}

function recorder() {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  return {
    lines,
    logger: {
      warn: (msg: string, fields: Record<string, unknown> = {}) =>
        lines.push({ level: "warn", msg, fields }),
      info: (msg: string, fields: Record<string, unknown> = {}) =>
        lines.push({ level: "info", msg, fields }),
    },
  };
}

const ok: QueryResult = { rows: [], count: 0 };

Deno.test("watchOutages() warns once per outage and logs its end once", async () => {
  const { driver, pending } = manualDriver();
  const { logger, lines } = recorder();
  let now = 1000;
  const db = watchOutages(driver, { logger, database: "postgres://app:***@db/x", now: () => now });
  const settled = (p: Promise<unknown>) => p.then(() => "ok", () => "failed");

  const first = [settled(db.query("a")), settled(db.query("b")), settled(db.query("c"))];
  pending[0]!.reject(refused());
  pending[1]!.reject(refused());
  // Started before the outage was seen: its success does not end the outage.
  pending[2]!.resolve(ok);
  assert.deepEqual(await Promise.all(first), ["failed", "failed", "ok"]);
  assert.deepEqual(lines.map((l) => l.level), ["warn"]);
  assert.equal(lines[0]!.fields.database, "postgres://app:***@db/x");
  assert.match(String(lines[0]!.fields.error), /ECONNREFUSED/);

  const during = settled(db.query("d"));
  pending[3]!.reject(refused());
  await during;
  now = 4000;
  const after = settled(db.query("e"));
  const late = settled(db.query("f"));
  pending[4]!.resolve(ok);
  await after;
  // Started before the recovery was seen: its failure does not start a second outage.
  pending[5]!.reject(refused());
  await late;
  assert.deepEqual(lines.map((l) => l.level), ["warn", "info"]);
  assert.deepEqual(lines[1]!.fields, {
    database: "postgres://app:***@db/x",
    outage_ms: 3000,
    failed_statements: 3,
  });

  const next = settled(db.query("g"));
  pending[6]!.reject(Object.assign(new Error("the database system is shutting down"), {
    code: "57P03",
  }));
  await next;
  assert.deepEqual(lines.map((l) => l.level), ["warn", "info", "warn"]);
});

Deno.test("watchOutages() ignores errors of one statement and redacts URL passwords", async () => {
  const { driver, pending } = manualDriver();
  const { logger, lines } = recorder();
  const db = watchOutages(driver, { logger, database: "db" });
  const failing = db.query("x").catch(() => {});
  pending[0]!.reject(Object.assign(new Error("duplicate key"), { code: "23505" }));
  await failing;
  assert.equal(lines.length, 0);
  const down = db.query("y").catch(() => {});
  pending[1]!.reject(
    Object.assign(new Error('Cannot reach "postgres://app:hunter22@db/x"'), { code: "ECONNRESET" }),
  );
  await down;
  assert.equal(lines[0]!.fields.error, 'Cannot reach "postgres://app:***@db/x"');
});

/**
 * The shared PostgreSQL of the build machines (127.0.0.1:5432, trust auth)
 * for storage tests: a fresh schema per test run, dropped at the end. When
 * the server is missing the tests are skipped, except under `CI=true`
 * where that is a failure.
 *
 * @module
 */
import { requireService } from "./services.ts";
import postgres from "postgres";
import { testContext } from "../../core/testing.ts";
import { type Database, openDatabase } from "../../handlers/_db/mod.ts";

/** URL of the shared test server (override with `TEST_DATABASE_URL`). */
export const PG_URL = Deno.env.get("TEST_DATABASE_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";

async function selectOne(): Promise<void> {
  const sql = postgres(PG_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Whether to run PostgreSQL tests: checked once per file (top-level await). */
export const HAVE_POSTGRES = await requireService(`PostgreSQL at "${PG_URL}"`, selectOne);

/** A schema name unique to this run. */
export function freshSchema(prefix = "t"): string {
  return `${prefix}_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8).replace("-", "")}`;
}

/** Drops `schema` and everything in it. */
export async function dropSchema(schema: string, url = PG_URL): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Reads every stored sample of `schema` as `device/metric/seq=value`, sorted. */
export const SAMPLE_ROWS_SQL = (schema: string) =>
  `SELECT device, metric, seq::float8 AS seq, value, unit, quality, tags,
     (extract(epoch FROM ts) * 1000)::float8 AS ts
   FROM "${schema}".telemetry_data ORDER BY device, metric, seq, ts`;

/**
 * Runs `fn` with a database on a fresh schema of the shared server, then
 * releases it and drops the schema.
 */
export function withSchema(
  prefix: string,
  fn: (db: Database, schema: string) => Promise<void>,
): Promise<void> {
  return withSchemaNamed(freshSchema(prefix), fn);
}

/**
 * Runs `fn` with a database on `schema` (migrated on opening), then
 * releases it and drops the schema.
 */
export async function withSchemaNamed(
  schema: string,
  fn: (db: Database, schema: string) => Promise<void>,
): Promise<void> {
  const db = await openDatabase(
    { url: PG_URL, schema, data_dir: "", pool: 2, connect_timeout: 5000 },
    testContext(),
  );
  try {
    await fn(db, schema);
  } finally {
    await db.release();
    await dropSchema(schema);
  }
}

/** Runs one query on `schema` of the shared server (through a short-lived handle). */
export async function queryRows(schema: string, sql: string): Promise<Record<string, unknown>[]> {
  const db = await openDatabase(
    { url: PG_URL, schema, data_dir: "", pool: 1, connect_timeout: 5000 },
    testContext(),
  );
  try {
    return (await db.query(sql)).rows;
  } finally {
    await db.release();
  }
}

/**
 * SQL text shared by PostgreSQL and PGlite: array literals for bulk
 * parameters and the versioned migrations.
 *
 * Bulk writes pass one array literal per column (`$1::float8[]`) and
 * `unnest` them, so a batch of any size is one statement with a fixed text
 * (prepared once per connection) and the same SQL runs on both engines.
 *
 * @module
 */

/** Quotes an identifier (schema names are checked by the config schema too). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A PostgreSQL array literal of numbers; `null`/`undefined` become `NULL`. */
export function numberArray(values: readonly (number | null | undefined)[]): string {
  let out = "{";
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ",";
    out += v === null || v === undefined ? "NULL" : String(v);
  }
  return out + "}";
}

/** A PostgreSQL array literal of strings; `null`/`undefined` become `NULL`. */
export function textArray(values: readonly (string | null | undefined)[]): string {
  let out = "{";
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ",";
    out += v === null || v === undefined ? "NULL" : `"${v.replace(/[\\"]/g, "\\$&")}"`;
  }
  return out + "}";
}

/** A chunked delete of `$2` rows of `table` matching `where`, under a try-lock named `$3`. */
function expireChunk(s: string, table: string, where: string): string {
  return `WITH lock AS (SELECT pg_try_advisory_xact_lock(hashtext($3)) AS locked),
    deleted AS (
      DELETE FROM ${s}.${table} WHERE (SELECT locked FROM lock) AND ctid = ANY(ARRAY(
        SELECT ctid FROM ${s}.${table} WHERE ${where} LIMIT $2))
      RETURNING 1)
    SELECT (SELECT locked FROM lock) AS locked, (SELECT count(*) FROM deleted)::int AS deleted`;
}

/** The statements of a database on schema `s` (quoted), prepared once per connection. */
export function statements(s: string) {
  return {
    series: `INSERT INTO ${s}.telemetry_series (device, metric)
      SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`,
    seriesRead: `SELECT t.id, t.device, t.metric FROM ${s}.telemetry_series t
      JOIN unnest($1::text[], $2::text[]) AS x(device, metric) USING (device, metric)`,
    samples: `INSERT INTO ${s}.telemetry_samples (series_id, ts, value, seq, unit, quality, tags)
      SELECT i, to_timestamp(t / 1000), v, q, u, ql, g::jsonb
      FROM unnest($1::int4[], $2::float8[], $3::float8[], $4::int8[], $5::text[], $6::text[],
        $7::text[]) AS x(i, t, v, q, u, ql, g)`,
    // One statement, so atomic without a transaction: the ledger entries and the merge commit
    // together, and a task already in the ledger merges nothing. $1 the tasks' ids, $2 now, then partials tagged with the
    // (1-based) index of their task in $1. Only tasks new to the ledger count; their partials
    // of the same key are summed first (an upsert may touch a row once per statement), in one
    // order, so concurrent merges lock rows in the same order.
    mergeMany: `WITH ledger AS (
        INSERT INTO ${s}.aggregate_tasks (task_id, done_at)
        SELECT id, to_timestamp($2::float8 / 1000) FROM unnest($1::text[]) AS t(id)
        ON CONFLICT DO NOTHING RETURNING task_id
      ), merged AS (
        INSERT INTO ${s}.aggregates AS a
          (device, metric, window_ms, window_start, count, sum, min, max, updated_at)
        SELECT d, m, w, to_timestamp(st::float8 / 1000), sum(c), sum(su), min(mi), max(ma),
          to_timestamp($2::float8 / 1000)
        FROM unnest($3::int4[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[],
          $9::float8[], $10::float8[], $11::float8[]) AS x(k, d, m, w, st, c, su, mi, ma)
        WHERE ($1::text[])[k] IN (SELECT task_id FROM ledger)
        GROUP BY d, m, w, st
        ORDER BY d, m, w, st
        ON CONFLICT (device, metric, window_ms, window_start) DO UPDATE SET
          count = a.count + excluded.count, sum = a.sum + excluded.sum,
          min = least(a.min, excluded.min), max = greatest(a.max, excluded.max),
          updated_at = excluded.updated_at
      )
      SELECT task_id FROM ledger`,
    // One chunk of a retention pass; $3 names the advisory lock that lets one process at a
    // time delete from the schema (held until the statement commits). Returns locked, deleted.
    expire: expireChunk(s, "telemetry_samples", "ts < to_timestamp($1::float8 / 1000)"),
    expireAggregates: expireChunk(
      s,
      "aggregates",
      "window_ms = $4 AND window_start < to_timestamp($1::float8 / 1000)",
    ),
    prune: `DELETE FROM ${s}.aggregate_tasks WHERE done_at < to_timestamp($1::float8 / 1000)`,
    anomalies: `INSERT INTO ${s}.anomalies (id, device, metric, ts, value, expected_low,
        expected_high, score, rule, severity, detail)
      SELECT id, d, m, to_timestamp(t / 1000), v, lo, hi, sc, r, sv, dt
      FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[],
        $7::float8[], $8::float8[], $9::text[], $10::text[], $11::text[])
        AS x(id, d, m, t, v, lo, hi, sc, r, sv, dt)
      ON CONFLICT (id) DO NOTHING`,
    // $1 ids, $2 when each was resolved; returns the ids that were open.
    resolve: `UPDATE ${s}.anomalies AS a SET resolved_at = to_timestamp(x.at / 1000)
      FROM unnest($1::text[], $2::float8[]) AS x(id, at)
      WHERE a.id = x.id AND a.resolved_at IS NULL
      RETURNING a.id`,
    // Reads for GET /api/v1/series: the latest $5 (or $6) rows of the range, newest first
    // (the caller reverses them). $1 device, $2 metric, $3..$4 the range in ms.
    readSamples: `SELECT (extract(epoch FROM ts) * 1000)::float8 AS ts, value
      FROM ${s}.telemetry_data
      WHERE device = $1 AND metric = $2
        AND ts >= to_timestamp($3::float8 / 1000) AND ts <= to_timestamp($4::float8 / 1000)
      ORDER BY ts DESC LIMIT $5`,
    // $5 the bucket length in ms.
    readSampleBuckets: `SELECT floor(extract(epoch FROM ts) * 1000 / $5::float8) * $5::float8
        AS ts, avg(value) AS mean, min(value) AS min, max(value) AS max, count(*)::float8 AS count
      FROM ${s}.telemetry_data
      WHERE device = $1 AND metric = $2
        AND ts >= to_timestamp($3::float8 / 1000) AND ts <= to_timestamp($4::float8 / 1000)
      GROUP BY 1 ORDER BY 1 DESC LIMIT $6`,
    // $5 the window read, $6 the bucket length (a multiple of it: windows merge exactly).
    readAggregates: `SELECT floor(extract(epoch FROM window_start) * 1000 / $6::float8)
        * $6::float8 AS ts, sum(sum) / sum(count) AS mean, min(min) AS min, max(max) AS max,
        sum(count)::float8 AS count
      FROM ${s}.aggregates
      WHERE device = $1 AND metric = $2 AND window_ms = $5
        AND window_start >= to_timestamp($3::float8 / 1000)
        AND window_start <= to_timestamp($4::float8 / 1000)
      GROUP BY 1 ORDER BY 1 DESC LIMIT $7`,
  } as const;
}

/** The statements of {@link statements}. */
export type Statements = ReturnType<typeof statements>;

/** One schema change: applied once, in version order, inside the migration script. */
export interface Migration {
  version: number;
  name: string;
  /** SQL for schema `s` (already quoted). */
  sql(s: string): string;
}

/**
 * The migrations. Never edit a released one: add a new version.
 *
 * Samples live in `telemetry_samples` keyed by an integer series id (a
 * text key on the hot table costs about 3× on insert); `telemetry_data` is
 * the readable view with device and metric names. The series id is not a
 * foreign key: ids only ever come from `telemetry_series`, and the check
 * would cost a lookup per row.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "samples, aggregates and anomalies",
    sql: (s) => `
CREATE TABLE ${s}.telemetry_series (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device text NOT NULL,
  metric text NOT NULL,
  UNIQUE (device, metric)
);
CREATE TABLE ${s}.telemetry_samples (
  series_id integer NOT NULL,
  ts timestamptz NOT NULL,
  value double precision NOT NULL,
  seq bigint,
  unit text,
  quality text,
  tags jsonb
);
-- One sample, one row: (series, seq) when the sample has a seq, else (series, ts).
-- (Replaced by version 2.)
CREATE UNIQUE INDEX telemetry_samples_seq_key ON ${s}.telemetry_samples (series_id, seq)
  WHERE seq IS NOT NULL;
CREATE UNIQUE INDEX telemetry_samples_ts_key ON ${s}.telemetry_samples (series_id, ts)
  WHERE seq IS NULL;
CREATE INDEX telemetry_samples_ts_brin ON ${s}.telemetry_samples USING brin (ts);
CREATE VIEW ${s}.telemetry_data AS
  SELECT r.device, r.metric, d.ts, d.value, d.unit, d.quality, d.seq, d.tags
  FROM ${s}.telemetry_samples d JOIN ${s}.telemetry_series r ON r.id = d.series_id;

CREATE TABLE ${s}.aggregates (
  device text NOT NULL,
  metric text NOT NULL,
  window_ms bigint NOT NULL,
  window_start timestamptz NOT NULL,
  count bigint NOT NULL,
  sum double precision NOT NULL,
  min double precision NOT NULL,
  max double precision NOT NULL,
  mean double precision GENERATED ALWAYS AS (sum / count) STORED,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device, metric, window_ms, window_start)
);
CREATE TABLE ${s}.aggregate_tasks (
  task_id text PRIMARY KEY,
  done_at timestamptz NOT NULL
);
CREATE INDEX aggregate_tasks_done_at ON ${s}.aggregate_tasks (done_at);

CREATE TABLE ${s}.anomalies (
  id text PRIMARY KEY,
  device text NOT NULL,
  metric text NOT NULL,
  ts timestamptz NOT NULL,
  value double precision NOT NULL,
  expected_low double precision,
  expected_high double precision,
  score double precision,
  rule text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  detail text,
  created_at timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz
);
CREATE INDEX anomalies_series_ts ON ${s}.anomalies (device, metric, ts);
`,
  },
  {
    // Version 1 keyed a sample with a seq by (series, seq) alone: once a device or the
    // process restarted and seq counted from 0 again, new samples were skipped as duplicates.
    version: 2,
    name: "samples keyed by series, timestamp and seq",
    sql: (s) => `
CREATE UNIQUE INDEX telemetry_samples_key ON ${s}.telemetry_samples (series_id, ts, seq)
  NULLS NOT DISTINCT;
DROP INDEX ${s}.telemetry_samples_seq_key;
DROP INDEX ${s}.telemetry_samples_ts_key;
`,
  },
  {
    version: 3,
    name: "aggregates by window, for retention",
    sql: (s) => `
CREATE INDEX aggregates_window_start ON ${s}.aggregates (window_ms, window_start);
`,
  },
];

/** Quotes a string literal (standard_conforming_strings, on by default since 9.1). */
function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** Dollar-quote tag of the migration block; no migration may contain it. */
const BLOCK = "$telemetryhub_migrate$";

/**
 * One script applying the missing {@link MIGRATIONS} to schema `schema`
 * (`s` is it quoted): an advisory lock per schema, then a PL/pgSQL block
 * that applies each version not yet recorded, then the versions it applied
 * (rows recorded at this transaction's `now()`). Sent as one simple query,
 * it is one implicit transaction on PostgreSQL and PGlite alike: all or
 * nothing, and the lock is held to its end.
 */
export function migrationScript(schema: string, s: string): string {
  const steps = MIGRATIONS.map((m) => {
    const sql = m.sql(s);
    if (sql.includes(BLOCK)) throw new Error(`Migration ${m.version} contains "${BLOCK}"`);
    return `IF NOT EXISTS (SELECT FROM ${s}.schema_migrations WHERE version = ${m.version}) THEN
${sql}
INSERT INTO ${s}.schema_migrations (version, name) VALUES (${m.version}, ${quoteLiteral(m.name)});
END IF;`;
  });
  // CREATE SCHEMA only when missing: IF NOT EXISTS still needs the CREATE privilege.
  return `SELECT pg_advisory_xact_lock(hashtext(${quoteLiteral(`telemetryhub:${schema}`)}));
DO ${BLOCK} BEGIN
IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = ${quoteLiteral(schema)}) THEN
CREATE SCHEMA ${s};
END IF;
CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now());
${steps.join("\n")}
END ${BLOCK};
SELECT version FROM ${s}.schema_migrations WHERE applied_at = now() ORDER BY version;`;
}

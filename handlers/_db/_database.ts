/**
 * The storage operations of handlers, on either engine: migrations, batched
 * idempotent sample inserts, exact aggregate merges and anomalies.
 *
 * @module
 */
import type { AnomalyEvent, Sample, SeriesAnswer, SeriesQuery } from "../../core/mod.ts";
import { Coalescer, settle, type Settled } from "./_coalesce.ts";
import { readAggregates, readSamples } from "./_series_read.ts";
import { type AggregatePartial, combinePartials, type MergeWrite } from "./_partials.ts";

export type { AggregatePartial };
import { classifyError, type Driver, errorCode } from "./_drivers.ts";
import {
  migrationScript,
  numberArray,
  quoteIdent,
  type Statements,
  statements,
  textArray,
} from "./_sql.ts";

/**
 * One anomaly as stored in `anomalies`: the SDK's {@link AnomalyEvent}, whose
 * score may be unknown here; `id` makes inserting it idempotent.
 */
export type AnomalyRow = Omit<AnomalyEvent, "score"> & { score: number | null };

/** SQLSTATE of a duplicate key. */
const UNIQUE_VIOLATION = "23505";

/** Series ids cached per database; cleared whole when it grows past this. */
const MAX_CACHED_SERIES = 100_000;

/** Most calls in one coalesced statement, and most samples in one coalesced insert. */
const MAX_COALESCED_CALLS = 64;
const MAX_COALESCED_SAMPLES = 20_000;

/** One call's samples and their series ids. */
interface SampleWrite {
  samples: readonly Sample[];
  ids: Int32Array;
}

/** One anomaly to mark resolved. */
interface Resolution {
  id: string;
  resolvedAt: number;
}

/** Storage on one schema of one engine. Made and shared by `openDatabase()`. */
export class DatabaseCore {
  readonly driver: Driver;
  readonly schema: string;
  readonly #s: string;
  readonly #series = new Map<string, number>();
  readonly #sql: Statements;
  /** Inserts of concurrent workers, two statements at a time (PGlite runs one anyway). */
  readonly #inserts: Coalescer<SampleWrite, number>;
  /**
   * Merges, one statement at a time: concurrent merges would wait for each other's row
   * locks on the same hot aggregate rows anyway.
   */
  readonly #merges: Coalescer<MergeWrite, boolean>;
  readonly #resolutions: Coalescer<Resolution, boolean>;

  constructor(driver: Driver, schema: string) {
    this.driver = driver;
    this.schema = schema;
    this.#s = quoteIdent(schema);
    this.#sql = statements(this.#s);
    this.#inserts = new Coalescer((writes) => this.#insertMany(writes), {
      inFlight: driver.kind === "pglite" ? 1 : 2,
      maxCalls: MAX_COALESCED_CALLS,
      fits: (batch, next) =>
        batch.reduce((n, w) => n + w.samples.length, next.samples.length) <=
          MAX_COALESCED_SAMPLES,
    });
    this.#merges = new Coalescer((writes) => this.#mergeMany(writes), {
      inFlight: 1,
      maxCalls: MAX_COALESCED_CALLS,
      // A task redelivered while its first delivery is still merging waits for the next
      // statement, which finds it in the ledger.
      fits: (batch, next) => !batch.some((w) => w.taskId === next.taskId),
    });
    this.#resolutions = new Coalescer((items) => this.#resolveMany(items), {
      inFlight: 1,
      maxCalls: MAX_COALESCED_CALLS,
      // The second of two calls for one anomaly finds it resolved, as it would alone.
      fits: (batch, next) => !batch.some((r) => r.id === next.id),
    });
  }

  /**
   * Applies missing migrations as one script (one implicit transaction, so
   * all or nothing) under an advisory lock per schema, so processes starting
   * together take turns and each version is applied exactly once. Resolves
   * the versions applied.
   */
  async migrate(): Promise<number[]> {
    return (await this.driver.exec(migrationScript(this.schema, this.#s))).map((r) =>
      Number(r.version)
    );
  }

  /** Series ids of every device+metric in `samples`, creating missing series. */
  async #seriesIds(samples: readonly Sample[]): Promise<Int32Array> {
    const ids = new Int32Array(samples.length);
    const missing = new Map<string, [string, string]>();
    let device = "", metric = "", key = "";
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      if (s.device !== device || s.metric !== metric) {
        device = s.device;
        metric = s.metric;
        key = `${device}\u0000${metric}`;
      }
      const id = this.#series.get(key);
      if (id === undefined) missing.set(key, [device, metric]);
      else ids[i] = id;
    }
    if (missing.size === 0) return ids;
    if (this.#series.size + missing.size > MAX_CACHED_SERIES) this.#series.clear();
    const pairs = [...missing.values()];
    const params = [textArray(pairs.map((p) => p[0])), textArray(pairs.map((p) => p[1]))];
    await this.driver.query(this.#sql.series, params);
    // A separate statement sees series another process committed meanwhile.
    for (const row of (await this.driver.query(this.#sql.seriesRead, params)).rows) {
      this.#series.set(`${row.device}\u0000${row.metric}`, Number(row.id));
    }
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      const id = this.#series.get(`${s.device}\u0000${s.metric}`);
      if (id === undefined) throw new Error(`Series "${s.device}/${s.metric}" was not created`);
      ids[i] = id;
    }
    return ids;
  }

  /**
   * Stores samples; samples already stored (same device, metric, timestamp
   * and seq) are skipped. Calls made while other inserts are in flight go
   * together in one statement (see {@link Coalescer}). Returns the number of
   * rows inserted.
   */
  async insertSamples(samples: readonly Sample[]): Promise<number> {
    const n = samples.length;
    if (n === 0) return 0;
    try {
      const ids = await this.#seriesIds(samples);
      return await this.#inserts.call({ samples, ids });
    } catch (error) {
      throw classifyError(error, `Cannot store ${n} samples in schema "${this.schema}"`);
    }
  }

  /**
   * Several calls' samples in one statement. When it fails (it then changes
   * nothing) each call runs again alone, so a duplicate or a bad sample
   * concerns only its own call.
   */
  async #insertMany(writes: SampleWrite[]): Promise<Settled<number>[]> {
    if (writes.length > 1) {
      try {
        await this.#insertRows(writes, false);
        return writes.map((w) => ({ ok: true, value: w.samples.length }));
      } catch { /* each alone, below */ }
    }
    return await Promise.all(writes.map((w) => settle(() => this.#insertAlone(w))));
  }

  /**
   * One INSERT of unnested array literals, on both engines: first without
   * ON CONFLICT (its speculative insertion costs about 30% of the
   * throughput), and again with ON CONFLICT DO NOTHING only when a sample is
   * already stored. No COPY: with npm `postgres` 3.4.9 a server going away
   * during a COPY crashes the process (the COPY stream writes to the socket
   * postgres.js has set to null; see `_drivers.ts`).
   */
  async #insertAlone(write: SampleWrite): Promise<number> {
    try {
      return await this.#insertRows([write], false);
    } catch (error) {
      // A statement that fails changes nothing: on a duplicate, skip the stored ones.
      if (errorCode(error) !== UNIQUE_VIOLATION) throw error;
      return await this.#insertRows([write], true);
    }
  }

  async #insertRows(writes: readonly SampleWrite[], skipStored: boolean): Promise<number> {
    let n = 0;
    for (const w of writes) n += w.samples.length;
    const ids = new Array<number>(n), ts = new Array<number>(n), values = new Array<number>(n);
    const seq = new Array<number | undefined>(n), unit = new Array<string | undefined>(n);
    const quality = new Array<string | undefined>(n), tags = new Array<string | undefined>(n);
    let i = 0;
    for (const w of writes) {
      const { samples } = w;
      for (let j = 0; j < samples.length; j++, i++) {
        const s = samples[j]!;
        ids[i] = w.ids[j]!;
        ts[i] = s.ts;
        values[i] = s.value;
        seq[i] = s.seq;
        unit[i] = s.unit;
        quality[i] = s.quality;
        tags[i] = s.tags === undefined ? undefined : JSON.stringify(s.tags);
      }
    }
    const params = [
      numberArray(ids),
      numberArray(ts),
      numberArray(values),
      numberArray(seq),
      textArray(unit),
      textArray(quality),
      textArray(tags),
    ];
    const text = skipStored ? `${this.#sql.samples} ON CONFLICT DO NOTHING` : this.#sql.samples;
    return (await this.driver.query(text, params)).count;
  }

  /**
   * Deletes samples whose timestamp is before `before` (ms); see
   * {@link expireChunks}. Resolves the number deleted, or `null` when
   * another process is deleting from this schema.
   */
  expireSamples(
    before: number,
    options: { chunk?: number; signal?: AbortSignal } = {},
  ): Promise<number | null> {
    return this.#expireChunks(this.#sql.expire, [before], options, "samples");
  }

  /** Deletes aggregates of the `windowMs` window that started before `before` (ms). */
  expireAggregates(
    windowMs: number,
    before: number,
    options: { chunk?: number; signal?: AbortSignal } = {},
  ): Promise<number | null> {
    return this.#expireChunks(this.#sql.expireAggregates, [before], options, "aggregates", [
      windowMs,
    ]);
  }

  /**
   * Runs a chunked delete (`$1` cut-off, `$2` chunk size, `$3` lock name,
   * then `extra`), `chunk` rows per statement so no lock is held long. Only
   * one process at a time deletes from a schema (an advisory lock per
   * statement); the others return `null` at once. Stops between chunks once
   * `signal` aborts.
   */
  async #expireChunks(
    statement: string,
    params: number[],
    options: { chunk?: number; signal?: AbortSignal },
    what: string,
    extra: number[] = [],
  ): Promise<number | null> {
    const { chunk = 50_000, signal } = options;
    const lock = `telemetryhub:retention:${this.schema}`;
    let total = 0;
    try {
      for (;;) {
        const { rows } = await this.driver.query(statement, [...params, chunk, lock, ...extra]);
        if (rows[0]?.locked !== true) return total > 0 ? total : null;
        const deleted = Number(rows[0].deleted);
        total += deleted;
        if (deleted < chunk || signal?.aborted) return total;
      }
    } catch (error) {
      throw classifyError(error, `Cannot delete expired ${what} in schema "${this.schema}"`);
    }
  }

  /**
   * Adds partial statistics to `aggregates` exactly once per `taskId`: the
   * id goes into the `aggregate_tasks` ledger in the same statement as
   * the upsert (counts and sums added, min and max widened), so a task seen
   * again is skipped. Merges of other tasks made meanwhile go in the same
   * statement (see {@link Coalescer}). Resolves `false` when it was skipped.
   */
  async mergeAggregates(
    taskId: string,
    partials: readonly AggregatePartial[],
    now: number = Date.now(),
  ): Promise<boolean> {
    try {
      return await this.#merges.call({ taskId, rows: combinePartials(partials), now });
    } catch (error) {
      throw classifyError(error, `Cannot merge aggregates of task "${taskId}"`);
    }
  }

  /**
   * Several tasks' merges in one statement (see {@link Coalescer}); when it
   * fails (changing nothing) each task runs again alone, so an error
   * concerns only its own task.
   */
  async #mergeMany(writes: MergeWrite[]): Promise<Settled<boolean>[]> {
    if (writes.length > 1) {
      try {
        const fresh = await this.#mergeRows(writes);
        return writes.map((w) => ({ ok: true, value: fresh.has(w.taskId) }));
      } catch { /* each alone, below */ }
    }
    return await Promise.all(
      writes.map((w) => settle(async () => (await this.#mergeRows([w])).has(w.taskId))),
    );
  }

  /** Merges the tasks' partials and records them in the ledger; resolves the ids new to it. */
  async #mergeRows(writes: readonly MergeWrite[]): Promise<Set<string>> {
    const task: number[] = [], device: string[] = [], metric: string[] = [];
    const window: number[] = [], start: number[] = [], count: number[] = [];
    const sum: number[] = [], min: number[] = [], max: number[] = [];
    let now = 0;
    writes.forEach((w, k) => {
      now = Math.max(now, w.now);
      for (const r of w.rows) {
        task.push(k + 1);
        device.push(r.device);
        metric.push(r.metric);
        window.push(r.window_ms);
        start.push(r.window_start);
        count.push(r.count);
        sum.push(r.sum);
        min.push(r.min);
        max.push(r.max);
      }
    });
    const { rows } = await this.driver.query(this.#sql.mergeMany, [
      textArray(writes.map((w) => w.taskId)),
      now,
      numberArray(task),
      textArray(device),
      textArray(metric),
      numberArray(window),
      numberArray(start),
      numberArray(count),
      numberArray(sum),
      numberArray(min),
      numberArray(max),
    ]);
    return new Set(rows.map((r) => String(r.task_id)));
  }

  /** Forgets ledger entries older than `before` (ms); returns how many. */
  async pruneAggregateLedger(before: number): Promise<number> {
    try {
      return (await this.driver.query(this.#sql.prune, [before])).count;
    } catch (error) {
      throw classifyError(error, "Cannot prune the aggregate ledger");
    }
  }

  /** Stores anomalies; ids already stored are skipped. Returns rows inserted. */
  async insertAnomalies(rows: readonly AnomalyRow[]): Promise<number> {
    if (rows.length === 0) return 0;
    try {
      const col = <K extends keyof AnomalyRow>(k: K) => rows.map((r) => r[k]);
      const result = await this.driver.query(this.#sql.anomalies, [
        textArray(col("id")),
        textArray(col("device")),
        textArray(col("metric")),
        numberArray(col("ts")),
        numberArray(col("value")),
        numberArray(col("expected_low")),
        numberArray(col("expected_high")),
        numberArray(col("score")),
        textArray(col("rule")),
        textArray(col("severity")),
        textArray(col("detail")),
      ]);
      return result.count;
    } catch (error) {
      throw classifyError(error, `Cannot store ${rows.length} anomalies`);
    }
  }

  /**
   * Sets `resolved_at` of an open anomaly; resolves `false` when none was
   * open. Calls made meanwhile go in one statement (see {@link Coalescer}).
   */
  async resolveAnomaly(id: string, resolvedAt: number): Promise<boolean> {
    try {
      return await this.#resolutions.call({ id, resolvedAt });
    } catch (error) {
      throw classifyError(error, `Cannot resolve anomaly "${id}"`);
    }
  }

  /** Several resolutions in one statement; on failure (changing nothing) each alone. */
  async #resolveMany(items: Resolution[]): Promise<Settled<boolean>[]> {
    const resolve = async (batch: Resolution[]) => {
      const { rows } = await this.driver.query(this.#sql.resolve, [
        textArray(batch.map((r) => r.id)),
        numberArray(batch.map((r) => r.resolvedAt)),
      ]);
      return new Set(rows.map((r) => String(r.id)));
    };
    if (items.length > 1) {
      try {
        const done = await resolve(items);
        return items.map((r) => ({ ok: true, value: done.has(r.id) }));
      } catch { /* each alone, below */ }
    }
    return await Promise.all(items.map((r) => settle(async () => (await resolve([r])).has(r.id))));
  }

  /**
   * The latest `query.limit` stored samples of a series in its time range
   * (`query.step` 0), or buckets of `query.step` ms computed from them.
   */
  readSamples(query: SeriesQuery): Promise<SeriesAnswer> {
    return readSamples(this.driver, this.#sql, query);
  }

  /**
   * Buckets of `step` ms of a series merged from its `window` ms aggregates
   * (`step` a multiple of `window`), the latest `limit` of the range.
   */
  readAggregates(query: SeriesQuery, window: number): Promise<SeriesAnswer> {
    return readAggregates(this.driver, this.#sql, query, window);
  }

  /** Throws a {@link RetryableError} when the database does not answer. */
  async health(): Promise<void> {
    try {
      await this.driver.query("SELECT 1");
    } catch (error) {
      throw classifyError(error, `Database of schema "${this.schema}" does not answer`);
    }
  }
}

/**
 * Private library of the handlers that write to PostgreSQL (`store`,
 * `aggregate`, `anomaly`): the shared config fields, and process-wide,
 * reference-counted databases on real PostgreSQL (npm `postgres`) or
 * embedded PGlite, with the same SQL and migrations on both.
 *
 * @example
 * ```ts
 * import { defineHandler, z } from "../../core/mod.ts";
 * import { databaseConfig, openDatabase } from "./mod.ts";
 *
 * export default defineHandler({
 *   name: "my_store",
 *   summary: "Stores samples",
 *   config: z.strictObject({ ...databaseConfig() }),
 *   async create(config, ctx) {
 *     const db = await openDatabase(config, ctx);
 *     return {
 *       async handle(samples) {
 *         await db.insertSamples(samples);
 *       },
 *       close: () => db.release(),
 *     };
 *   },
 * });
 * ```
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { duration, type PluginContext, redactText, z } from "../../core/mod.ts";
import { DatabaseCore } from "./_database.ts";
import { classifyError, type Driver, openPglite, openPostgres } from "./_drivers.ts";
import { watchOutages } from "./_outage.ts";

export type { AggregatePartial, AnomalyRow } from "./_database.ts";
export { type Retention, retentionSchema, startRetention } from "./_retention.ts";
export { classifyError } from "./_drivers.ts";

/**
 * The config fields of every handler that writes to the database; spread
 * them into the handler's strict config:
 * `z.strictObject({ ...databaseConfig(), windows: … })`.
 */
export function databaseConfig() {
  return {
    url: z.string().default("").describe(
      "PostgreSQL URL (postgres://user:password@host:5432/db), usually " +
        '"${DATABASE_URL:-}"; empty means embedded PGlite in data_dir',
    ),
    data_dir: z.string().min(1).default("./data/pg").describe(
      "PGlite data directory when url is empty; a relative path is relative to the directory " +
        "the process started in (where `deno task run` may write ./data), wherever the " +
        "configuration file is",
    ),
    schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, {
      error: 'Expected a lower-case PostgreSQL schema name such as "public" or "telemetry"',
    }).default("public").describe("PostgreSQL schema holding the tables (created when missing)"),
    pool: z.int().min(1).max(100).default(4).describe(
      "Most connections to PostgreSQL; handlers of one process with the same url share one pool " +
        "(the first opened sets its size)",
    ),
    connect_timeout: duration({ timer: true }).pipe(z.number().min(1)).prefault("10s").describe(
      "Longest wait for a PostgreSQL connection",
    ),
  };
}

const databaseOptionsSchema = z.object(databaseConfig());
/** Where and how to connect; the fields of {@link databaseConfig}. */
export type DatabaseOptions = z.output<typeof databaseOptionsSchema>;

/** The methods of the database a handle shares; the handle calls them on the shared one. */
const SHARED_METHODS = [
  "insertSamples",
  "expireSamples",
  "expireAggregates",
  "mergeAggregates",
  "pruneAggregateLedger",
  "insertAnomalies",
  "resolveAnomaly",
  "readSamples",
  "readAggregates",
  "health",
] as const satisfies readonly (keyof DatabaseCore)[];
type SharedMethod = (typeof SHARED_METHODS)[number];

/** A shared database handle; {@link release} it when done. */
export interface Database extends Pick<DatabaseCore, "schema" | SharedMethod> {
  /** `postgres` or `pglite`. */
  readonly kind: Driver["kind"];
  /** Runs one statement (for tests and ad-hoc reads). */
  query: Driver["query"];
  /** Gives this handle back; the last release of a database closes it. Safe to call twice. */
  release(): Promise<void>;
}

interface Shared<V> {
  value: Promise<V>;
  refs: number;
}

/** Values opened once per key and closed when the last user lets go. */
class SharedCache<V> {
  readonly #entries = new Map<string, Shared<V>>();

  async acquire(key: string, open: () => Promise<V>): Promise<V> {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { value: open(), refs: 0 };
      this.#entries.set(key, entry);
    }
    entry.refs++;
    try {
      return await entry.value;
    } catch (error) {
      if (--entry.refs === 0 && this.#entries.get(key) === entry) this.#entries.delete(key);
      throw error;
    }
  }

  /** Drops one reference; returns the value when it was the last one. */
  async release(key: string): Promise<V | undefined> {
    const entry = this.#entries.get(key);
    if (!entry || --entry.refs > 0) return undefined;
    this.#entries.delete(key);
    return await entry.value;
  }

  get size(): number {
    return this.#entries.size;
  }
}

const drivers = new SharedCache<Driver>();
const databases = new SharedCache<DatabaseCore>();

/** How many databases this process holds open (for tests). */
export function openDatabaseCount(): number {
  return databases.size;
}

function location(options: DatabaseOptions, dataDir: string) {
  if (options.url !== "") {
    return {
      key: `postgres ${options.url}`,
      label: redactText(options.url),
      open: () =>
        openPostgres({
          url: options.url,
          pool: options.pool,
          connectTimeoutMs: options.connect_timeout,
        }),
    };
  }
  const dir = isAbsolute(options.data_dir) ? options.data_dir : join(dataDir, options.data_dir);
  return { key: `pglite ${dir}`, label: `pglite:${dir}`, open: () => openPglite(dir) };
}

/**
 * What a handler instance using `db` says about threads: an embedded PGlite
 * database lives in one isolate, so its handler stays on the main one.
 */
export function isolateNeeds(db: Database | undefined): { mainIsolateOnly?: string } {
  return db?.kind === "pglite"
    ? { mainIsolateOnly: "it writes to an embedded PGlite database, which one isolate opens" }
    : {};
}

/**
 * Opens the database of `options` and applies missing migrations, or joins
 * the one this process already opened for the same url (or data directory)
 * and schema. Connection failures throw a `RetryableError`.
 */
export async function openDatabase(
  options: DatabaseOptions,
  ctx: Pick<PluginContext, "dataDir" | "logger">,
): Promise<Database> {
  const where = location(options, ctx.dataDir);
  const key = `${where.key}\u0000${options.schema}`;
  const core = await databases.acquire(key, async () => {
    let driver: Driver | undefined;
    try {
      // One watch per pool: an outage is logged once however many handlers share it.
      driver = await drivers.acquire(
        where.key,
        async () => watchOutages(await where.open(), { logger: ctx.logger, database: where.label }),
      );
      const core = new DatabaseCore(driver, options.schema);
      const applied = await core.migrate();
      ctx.logger.info("Database ready", {
        database: where.label,
        schema: options.schema,
        ...(applied.length > 0 ? { migrations_applied: applied } : {}),
      });
      return core;
    } catch (error) {
      if (driver) {
        const last = await drivers.release(where.key);
        await last?.close().catch(() => {});
      }
      throw classifyError(
        error,
        `Cannot open database "${where.label}" schema "${options.schema}"`,
      );
    }
  });
  let released = false;
  const shared = Object.fromEntries(
    SHARED_METHODS.map((name) => [name, (core[name] as (...args: never[]) => unknown).bind(core)]),
  ) as Pick<DatabaseCore, SharedMethod>;
  return {
    ...shared,
    kind: core.driver.kind,
    schema: core.schema,
    query: (text, params) => core.driver.query(text, params),
    async release() {
      if (released) return;
      released = true;
      if (!(await databases.release(key))) return;
      const driver = await drivers.release(where.key);
      await driver?.close();
    },
  };
}

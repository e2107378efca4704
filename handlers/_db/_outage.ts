/**
 * Makes a database outage visible once: the first statement that fails
 * because the database cannot be reached logs a warning, the first that
 * succeeds afterwards logs the recovery, per shared connection pool (not
 * per task, worker or handler).
 *
 * @module
 */
import { errorMessage, type Logger, redactText } from "../../core/mod.ts";
import { type Driver, isOutage } from "./_drivers.ts";

/** Options of {@link watchOutages}. */
export interface OutageWatchOptions {
  logger: Pick<Logger, "warn" | "info">;
  /** The database as people should read it (password redacted). */
  database: string;
  /** Milliseconds now (for the outage's length). */
  now?: () => number;
}

/**
 * `driver` with its statements watched for outages. Each statement is
 * numbered when it starts; only a statement started after the last change
 * of state can change it again, so statements already in flight when the
 * server went away (or came back) neither end the outage early nor start
 * a second one.
 */
export function watchOutages(driver: Driver, options: OutageWatchOptions): Driver {
  const { logger, database, now = Date.now } = options;
  let started = 0;
  let down = false;
  let changedAt = 0; // number of the last statement started before the state changed
  let since = 0;
  let failures = 0;

  function failed(n: number, error: unknown): void {
    if (!isOutage(error)) return;
    if (down) {
      failures++;
      return;
    }
    if (n <= changedAt) return;
    down = true;
    changedAt = started;
    since = now();
    failures = 1;
    logger.warn("Database unreachable; tasks that need it are retried until it is back", {
      database,
      error: redactText(errorMessage(error)),
    });
  }

  function succeeded(n: number): void {
    if (!down || n <= changedAt) return;
    down = false;
    changedAt = started;
    logger.info("Database reachable again", {
      database,
      outage_ms: now() - since,
      failed_statements: failures,
    });
  }

  async function watched<T>(run: () => Promise<T>): Promise<T> {
    const n = ++started;
    try {
      const result = await run();
      succeeded(n);
      return result;
    } catch (error) {
      failed(n, error);
      throw error;
    }
  }

  return {
    kind: driver.kind,
    query: (text, params) => watched(() => driver.query(text, params)),
    exec: (text) => watched(() => driver.exec(text)),
    close: () => driver.close(),
  };
}

/**
 * Background retention for the handlers that write to the database: a
 * pass at start-up, then every tenth of the shortest retention (at most
 * every 5 minutes), on the handler's clock, until stopped.
 *
 * @module
 */
import { duration, errorMessage, type PluginContext, z } from "../../core/mod.ts";

/** Longest pause between two retention passes. */
const MAX_INTERVAL = 300_000;

/** A retention duration: 0 keeps everything, otherwise at least a minute. */
export function retentionSchema() {
  return duration().pipe(
    z.number().refine((ms) => ms === 0 || ms >= 60_000, {
      error: 'Expected 0 (keep everything) or at least "1m"',
    }),
  );
}

/** A running retention loop. */
export interface Retention {
  /** Ends the loop (between two chunks of a pass) and waits for it. */
  stop(): Promise<void>;
}

/**
 * Runs `pass(signal)` at once and then every tenth of `shortest` ms (at
 * most every 5 minutes) until stopped or `ctx.signal` aborts. A failed pass
 * is logged as a warning and tried again at the next one.
 */
export function startRetention(
  ctx: Pick<PluginContext, "clock" | "logger" | "signal">,
  shortest: number,
  what: string,
  pass: (signal: AbortSignal) => Promise<void>,
): Retention {
  const stopped = new AbortController();
  const signal = AbortSignal.any([stopped.signal, ctx.signal]);
  const every = Math.min(shortest / 10, MAX_INTERVAL);
  const loop = (async () => {
    while (!signal.aborted) {
      try {
        await pass(signal);
      } catch (error) {
        // Housekeeping: the next pass tries again; writing goes on meanwhile.
        ctx.logger.warn(`Cannot delete expired ${what}`, { error: errorMessage(error) });
      }
      try {
        await ctx.clock.sleep(every, signal);
      } catch {
        return;
      }
    }
  })();
  return {
    async stop() {
      stopped.abort();
      await loop;
    },
  };
}

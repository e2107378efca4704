/**
 * A test handler that counts every sample it sees into a Redis hash
 * (`HINCRBY key device/metric/seq 1`) and the tasks per process
 * (`HINCRBY key:pids <pid> 1`) and isolates (`key:isolates`), so tests count
 * deliveries across processes and threads.
 * `delay` makes each task slow (to be caught holding tasks).
 *
 * @module
 */
import { Redis } from "ioredis";
import { defineHandler, duration, sleepUnlessAborted, z } from "../../core/mod.ts";

export default defineHandler({
  name: "redis_count",
  summary: "Counts samples by id into a Redis hash (tests)",
  config: z.strictObject({
    url: z.string().default("redis://127.0.0.1:6379").describe("Redis to count into"),
    key: z.string().describe("Hash that holds one field per sample id"),
    delay: duration().prefault("0ms").describe("Time each task takes"),
  }),
  create(config, ctx) {
    const redis = new Redis(config.url, { maxRetriesPerRequest: 1 });
    redis.on("error", () => {});
    return {
      async handle(samples, hctx) {
        if (config.delay > 0 && !await sleepUnlessAborted(ctx.clock, config.delay, hctx.signal)) {
          throw new Error("Stopped before the work was done");
        }
        const pipeline = redis.pipeline();
        for (const s of samples) {
          pipeline.hincrby(config.key, `${s.device}/${s.metric}/${s.seq}`, 1);
        }
        pipeline.hincrby(`${config.key}:pids`, String(Deno.pid), 1);
        // Thread isolates (threads:) are Web Workers named telemetry-thread-<n>.
        const isolate = (globalThis as { name?: string }).name || "main";
        pipeline.hincrby(`${config.key}:isolates`, isolate, 1);
        const results = await pipeline.exec();
        const failed = results?.find(([error]) => error);
        if (failed) throw failed[0];
      },
      async close() {
        await redis.quit().catch(() => redis.disconnect());
      },
    };
  },
});

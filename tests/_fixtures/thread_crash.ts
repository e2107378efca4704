/**
 * A test handler that crashes thread isolate 1 (see `threads:`) while it
 * holds a task: the first task that thread sees (once per Redis `key`) is
 * never finished, and an uncaught error ends the isolate. Elsewhere it passes
 * samples on untouched.
 *
 * @module
 */
import { Redis } from "ioredis";
import { defineHandler, z } from "../../core/mod.ts";

export default defineHandler({
  name: "thread_crash",
  summary: "Crashes thread isolate 1 mid-task, once (tests)",
  config: z.strictObject({
    url: z.string().default("redis://127.0.0.1:6379").describe("Redis holding the marker"),
    key: z.string().describe("Set when the crash happened, so it happens once"),
  }),
  create(config) {
    const redis = new Redis(config.url, { maxRetriesPerRequest: 1 });
    redis.on("error", () => {});
    const isolate = (globalThis as { name?: string }).name ?? "";
    return {
      async handle(samples) {
        if (isolate !== "telemetry-thread-1") return samples;
        if (await redis.set(config.key, "crashed", "NX") !== "OK") return samples;
        // Uncaught, as a bug in a handler would be: it ends this isolate while the task is held.
        setTimeout(() => {
          throw new Error("Thread crashed on purpose");
        }, 0);
        return await new Promise<never>(() => {});
      },
      async close() {
        await redis.quit().catch(() => redis.disconnect());
      },
    };
  },
});

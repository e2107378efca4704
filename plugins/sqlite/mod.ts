/**
 * The `sqlite` broker: a durable task queue in one SQLite file (WAL mode),
 * through Deno's built-in `node:sqlite`. Tasks survive a crash or kill of
 * the process (and, with `synchronous: full`, a power cut); several
 * processes on the same machine can share the file, so the hub and
 * processor roles can run as separate processes without Redis.
 *
 * @example
 * ```ts ignore
 * import sqlite from "./mod.ts";
 * import { testContext } from "../../core/testing.ts";
 * const broker = await sqlite.create(
 *   sqlite.config.parse({ path: "./data/broker.db" }),
 *   testContext(),
 * );
 * await broker.enqueue([{ id: "t1", type: "telemetry.analyze", payload: {}, attempts: 0, created_at: 0 }]);
 * ```
 *
 * @module
 */
import { defineBroker } from "../../core/mod.ts";
import { SqliteBroker } from "./_broker.ts";
import { sqliteBrokerConfig } from "./_config.ts";

export { SqliteBroker } from "./_broker.ts";
export { PRIORITY_SCHEDULE } from "./_reserve.ts";
export { sqliteBrokerConfig, type SqliteBrokerOptions } from "./_config.ts";
export { APPLICATION_ID, SCHEMA_VERSION } from "./_db.ts";

export default defineBroker({
  name: "sqlite",
  summary: "Durable task queue in a local SQLite file (at-least-once, split roles on one machine)",
  description: "Keeps tasks in one SQLite file in write-ahead-log mode: enqueue() resolves once " +
    "the tasks are committed, so a crash or `kill -9` loses nothing acknowledged, and tasks " +
    "held by a process that died are delivered again. Several processes on the same machine " +
    "can share the file (a hub and processors); network file systems do not work.",
  config: sqliteBrokerConfig,
  shared: true,
  create(config, ctx) {
    // node:sqlite is built into Deno: nothing heavy to load lazily.
    return new SqliteBroker(config, ctx);
  },
});

/**
 * `deno task bench [scenario…]`: runs named scenarios (all when none is
 * named), writes `bench/results/<scenario>.json` for each and prints one
 * Markdown table (also written to `bench/results/summary.md`).
 *
 * @module
 */
import { type BenchResult, calibrate, markdownTable, tidy, writeResult } from "./_harness.ts";
import {
  embedded,
  embeddedLatency,
  embeddedSqlite,
  embeddedSqliteLatency,
} from "./scenarios/embedded.ts";
import { embeddedChain } from "./scenarios/embedded_chain.ts";
import { fleet, fleetLatency } from "./scenarios/fleet.ts";
import { httpBatch, httpLatency, httpSingle } from "./scenarios/http.ts";
import { modbus } from "./scenarios/modbus.ts";
import { mqttScenario } from "./scenarios/mqtt.ts";
import { opcuaScenario } from "./scenarios/opcua.ts";
import { redisBatched, redisLatency, redisSingle } from "./scenarios/redis.ts";
import { redisCluster, redisWait } from "./scenarios/redis_cluster.ts";
import { serial } from "./scenarios/serial.ts";
import { storePglite, storePostgres } from "./scenarios/store.ts";
import { threadsScenario } from "./scenarios/threads.ts";

const SCENARIOS: Record<string, () => Promise<BenchResult>> = {
  embedded,
  "embedded-latency": embeddedLatency,
  "embedded-sqlite": embeddedSqlite,
  "embedded-sqlite-latency": embeddedSqliteLatency,
  "http-single": httpSingle,
  "http-batch": httpBatch,
  "http-latency": httpLatency,
  redis: redisBatched,
  "redis-single": redisSingle,
  "redis-latency": redisLatency,
  "redis-cluster": redisCluster,
  "redis-wait": redisWait,
  serial,
  mqtt: mqttScenario,
  modbus,
  opcua: opcuaScenario,
  store: storePostgres,
  "store-pglite": storePglite,
  fleet,
  "fleet-latency": fleetLatency,
  "embedded-chain": embeddedChain,
  threads: threadsScenario,
};

const RESULTS_DIR = new URL("./results", import.meta.url).pathname;

if (import.meta.main) {
  const names = Deno.args.length > 0 ? Deno.args : Object.keys(SCENARIOS);
  const unknown = names.filter((n) => !(n in SCENARIOS));
  if (unknown.length > 0) {
    console.error(
      `Unknown scenario ${unknown.map((n) => `"${n}"`).join(", ")}; known: ${
        Object.keys(SCENARIOS).map((n) => `"${n}"`).join(", ")
      }`,
    );
    Deno.exit(2);
  }
  const { reference_ops_per_second, load_before } = calibrate();
  console.error(
    `Machine: ${reference_ops_per_second.toLocaleString("en-US")} reference ops/s, ` +
      `load average ${load_before}`,
  );
  const results: BenchResult[] = [];
  for (const name of names) {
    console.error(`Running ${name}…`);
    const result = tidy(await SCENARIOS[name]!());
    await writeResult(RESULTS_DIR, result);
    results.push(result);
  }
  // The summary holds the latest result of every scenario run so far, in
  // scenario order, so running one scenario does not erase the others.
  const latest: BenchResult[] = [];
  for (const name of Object.keys(SCENARIOS)) {
    const fresh = results.find((r) => r.scenario === name);
    if (fresh) latest.push(fresh);
    else {
      try {
        latest.push(JSON.parse(await Deno.readTextFile(`${RESULTS_DIR}/${name}.json`)));
      } catch { /* never run here */ }
    }
  }
  await Deno.writeTextFile(`${RESULTS_DIR}/summary.md`, markdownTable(latest));
  console.log(markdownTable(results));
  // Timers of stopped components may linger; results are written.
  Deno.exit(0);
}

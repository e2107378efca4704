/**
 * A stand-in thread module for unit tests of `ThreadPool`: it speaks the
 * thread protocol without running a runtime. Its start config says what it
 * does: `completed` tasks reported in its totals and counter, `crash: true`
 * to end with an uncaught error once it has reported, `ready: false` to
 * report a failing check.
 *
 * @module
 */
import client from "prom-client";
import type { FromThread, ToThread } from "../../core/runtime/_thread_protocol.ts";
import { emptyTotals } from "../../core/runtime/metrics.ts";

const scope = globalThis as unknown as {
  postMessage(m: FromThread): void;
  onmessage: ((e: MessageEvent<ToThread>) => void) | null;
  close(): void;
};
const registry = new client.Registry();
const counter = new client.Counter({
  name: "fake_tasks_total",
  help: "Tasks (fake)",
  labelNames: ["pipeline"],
  registers: [registry],
});
let setup: { completed: number; crash?: boolean; ready?: boolean } = { completed: 0 };

function totals() {
  return { p: { ...emptyTotals(), tasks_completed: setup.completed } };
}

scope.onmessage = async (event) => {
  const m = event.data;
  switch (m.kind) {
    case "start":
      setup = m.config as unknown as typeof setup;
      counter.labels("p").inc(setup.completed);
      scope.postMessage({ kind: "ready" });
      scope.postMessage({ kind: "totals", totals: totals() });
      break;
    case "report":
      scope.postMessage({
        kind: "report",
        id: m.id,
        report: { totals: totals(), metrics: await registry.getMetricsAsJSON() },
      });
      if (setup.crash) {
        setTimeout(() => {
          throw new Error("Fake thread crashed");
        }, 0);
      }
      break;
    case "readiness":
      scope.postMessage({
        kind: "readiness",
        id: m.id,
        checks: [
          setup.ready === false
            ? { name: "broker:b", ready: false, reason: "Broker down" }
            : { name: "broker:b", ready: true },
        ],
      });
      break;
    case "stop":
      scope.postMessage({
        kind: "stopped",
        report: { totals: totals(), metrics: await registry.getMetricsAsJSON() },
      });
      scope.close();
      break;
  }
};

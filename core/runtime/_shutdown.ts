/**
 * Stopping: pipelines in order (devices, hub queue, gateway, workers), what
 * an in-process broker still holds, closing components, and the one-line
 * summary printed on stop.
 *
 * @module
 */
import { settledOrAborted } from "../clock.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { BrokerInstance, HandlerInstance } from "../plugin.ts";
import type { DeviceRunner } from "./devices.ts";
import type { PipelineTotals } from "./metrics.ts";
import type { PipelineRuntime } from "./_assembly.ts";

/** The one-line outcome printed on stop. */
export interface RunSummary extends PipelineTotals {
  uptime_ms: number;
  /** Tasks left in an in-process broker after the grace period (lost with the process). */
  tasks_abandoned: number;
}

/** Formats a {@link RunSummary} as one line. */
export function formatSummary(s: RunSummary): string {
  const parts = [
    `${s.samples_read} samples read`,
    `${s.tasks_completed} tasks completed`,
    `${s.tasks_retried} retried`,
    `${s.tasks_dead_lettered} dead-lettered`,
    `${s.samples_dropped} samples dropped`,
  ];
  if (s.tasks_released > 0) parts.push(`${s.tasks_released} tasks released`);
  if (s.tasks_abandoned > 0) parts.push(`${s.tasks_abandoned} tasks abandoned`);
  return `Stopped after ${(s.uptime_ms / 1000).toFixed(1)}s: ${parts.join(", ")}`;
}

/**
 * Stops pipelines: devices, then the hub queue drains through the gateway
 * into the broker, then workers finish what they hold (and keep draining
 * the broker where `drain` says so), all bounded by `deadline`.
 */
export async function stopPipelines(
  logger: Logger,
  pipelines: PipelineRuntime[],
  deadline: AbortSignal,
  drain: (p: PipelineRuntime) => boolean,
): Promise<void> {
  const devicesStopped = await settledOrAborted(
    Promise.all(pipelines.flatMap((p) => p.devices.map((d) => d.stop()))),
    deadline,
  );
  if (!devicesStopped) {
    logger.error("Devices still running after the grace period; not waiting");
  }
  for (const p of pipelines) p.queue?.close();
  await Promise.all(pipelines.map((p) => p.gateway?.stop(deadline)));
  await Promise.all(pipelines.map((p) => p.pool?.stop({ drain: drain(p), deadline })));
}

/** Counts (and logs) the tasks in-process brokers still hold: they die with the process. */
export async function abandonedTasks(
  brokers: ReadonlyMap<string, BrokerInstance>,
  logger: Logger,
): Promise<number> {
  let abandoned = 0;
  for (const [name, broker] of brokers) {
    if (broker.shared) continue;
    try {
      const d = await broker.depth();
      const left = d.queued + d.delayed + d.inflight;
      if (left > 0) {
        abandoned += left;
        logger.warn("Tasks left in the in-process broker are lost", { broker: name, tasks: left });
      }
    } catch { /* reported when it is closed */ }
  }
  return abandoned;
}

/** Closes devices, handlers and brokers, logging (not throwing) what fails. */
export async function closeComponents(
  logger: Logger,
  devices: readonly DeviceRunner[],
  handlers: ReadonlyMap<string, HandlerInstance>,
  brokers: ReadonlyMap<string, BrokerInstance>,
): Promise<void> {
  const close = async (kind: string, name: string, fn: (() => Promise<void>) | undefined) => {
    try {
      await fn?.();
    } catch (error) {
      logger.warn(`Closing ${kind} failed`, { [kind]: name, error: errorMessage(error) });
    }
  };
  for (const d of devices) await close("device", d.status.name, () => d.close());
  for (const [name, h] of handlers) await close("handler", name, h.close?.bind(h));
  for (const [name, b] of brokers) await close("broker", name, b.close.bind(b));
}

/**
 * Reload diffing: which pipelines, brokers and handlers a new configuration
 * keeps, restarts or removes.
 *
 * @module
 */
import type { PipelineConfig, ResolvedConfig } from "../config/schema.ts";

/** Every handler a pipeline's chains use. */
export function handlerNames(p: PipelineConfig): string[] {
  return [...new Set([...p.handlers, ...Object.values(p.routes).flat()])];
}

/** What must stay the same for a pipeline to keep running across a reload. */
function fingerprint(config: ResolvedConfig, name: string): string {
  const p = config.pipelines[name]!;
  return JSON.stringify({
    pipeline: p,
    devices: p.from.map((d) => config.devices[d]),
    broker: config.brokers[p.via],
    handlers: handlerNames(p).map((h) => config.handlers[h]),
  });
}

/** What a reload changed. */
export interface ReloadReport {
  /** Pipelines stopped and started again (or started, when new). */
  restarted: string[];
  unchanged: string[];
  removed: string[];
}

/** What a reload does, decided from the two configurations alone. */
export interface ReloadPlan extends ReloadReport {
  /** Whether a broker stays open: its settings are the same and a pipeline still uses it. */
  brokerKept(name: string): boolean;
  /** Whether a handler stays: its settings are the same and a pipeline still uses it. */
  handlerKept(name: string): boolean;
}

/**
 * Whether a pipeline uses a plugin whose code changed: any of its devices,
 * its broker or its handlers is of a type in `changed` (`kind:type` keys).
 */
function usesChangedCode(
  config: ResolvedConfig,
  name: string,
  changed: ReadonlySet<string>,
): boolean {
  if (changed.size === 0) return false;
  const p = config.pipelines[name]!;
  return p.from.some((d) => changed.has(`device:${config.devices[d]!.type}`)) ||
    changed.has(`broker:${config.brokers[p.via]!.type}`) ||
    handlerNames(p).some((h) => changed.has(`handler:${config.handlers[h]!.type}`));
}

/**
 * Compares two configurations pipeline by pipeline. `changedCode` names the
 * plugins (`kind:type`) whose module was imported afresh because its file
 * changed: what uses them restarts although its settings are the same.
 */
export function planReload(
  old: ResolvedConfig,
  next: ResolvedConfig,
  changedCode: ReadonlySet<string> = new Set(),
): ReloadPlan {
  const names = new Set([...Object.keys(old.pipelines), ...Object.keys(next.pipelines)]);
  const restarted: string[] = [];
  const unchanged: string[] = [];
  const removed: string[] = [];
  for (const name of names) {
    if (!(name in next.pipelines)) removed.push(name);
    else if (
      !(name in old.pipelines) || fingerprint(old, name) !== fingerprint(next, name) ||
      usesChangedCode(next, name, changedCode)
    ) {
      restarted.push(name);
    } else unchanged.push(name);
  }
  const same = (kind: "brokers" | "handlers", name: string) =>
    JSON.stringify(old[kind][name]) === JSON.stringify(next[kind][name]) &&
    !changedCode.has(`${kind === "brokers" ? "broker" : "handler"}:${next[kind][name]?.type}`);
  const keptPipelines = unchanged.map((n) => next.pipelines[n]!);
  const brokerKept = (name: string) =>
    same("brokers", name) &&
    (keptPipelines.some((p) => p.via === name) ||
      restarted.some((n) => next.pipelines[n]!.via === name));
  const usedHandlers = new Set(
    [...unchanged, ...restarted].flatMap((n) => handlerNames(next.pipelines[n]!)),
  );
  const handlerKept = (name: string) => usedHandlers.has(name) && same("handlers", name);
  return { restarted, unchanged, removed, brokerKept, handlerKept };
}

/**
 * Ingest: how samples from devices and from callers of `Runtime.ingest()`
 * enter a pipeline's hub queue.
 *
 * @module
 */
import type { Sample } from "../sample.ts";
import type { Ack, HubQueue } from "./hub_queue.ts";
import type { RuntimeMetrics } from "./metrics.ts";
import type { Tap } from "./tap.ts";

/**
 * Pushes a batch whose producer wants to know when it is safe: with a
 * durable broker once the broker holds it (the gateway acknowledges), else
 * once it is queued.
 */
export function pushAcked(
  queue: HubQueue,
  samples: Sample[],
  ack: Ack | undefined,
  durable: boolean,
): void | Promise<void> {
  if (!ack || durable) return queue.push(samples, ack);
  const pushed = queue.push(samples);
  if (pushed) pushed.then(ack.resolve, ack.reject);
  else if (queue.closed) ack.reject(new Error("The hub queue is closed: the pipeline is stopping"));
  else ack.resolve();
  return pushed;
}

/**
 * Counts samples that passed the edge, offers them to the tap and pushes
 * them; see `Runtime.ingest()` for what the result means.
 */
export function ingestSamples(
  { pipeline, queue, durable, metrics, tap }: {
    pipeline: string;
    queue: HubQueue;
    durable: boolean;
    metrics: RuntimeMetrics;
    tap: Tap;
  },
  samples: Sample[],
): Promise<void> | "full" {
  if (queue.wouldBlock(samples.length)) return "full";
  const totals = metrics.totals(pipeline);
  totals.samples_read += samples.length;
  // Device names come from request data: deviceLabel() sanitizes and caps them.
  const m = metrics;
  if (samples.length === 1) {
    m.fastCounter(m.samplesIngested, pipeline, m.deviceLabel(samples[0]!.device)).inc();
  } else {
    const perDevice = new Map<string, number>();
    for (const s of samples) perDevice.set(s.device, (perDevice.get(s.device) ?? 0) + 1);
    for (const [device, n] of perDevice) {
      m.fastCounter(m.samplesIngested, pipeline, m.deviceLabel(device)).inc(n);
    }
  }
  tap.offer(pipeline, samples);
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  void pushAcked(queue, samples, { resolve, reject }, durable);
  return promise;
}

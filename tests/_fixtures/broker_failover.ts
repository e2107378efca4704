/**
 * A steady load through a broker while a fault happens (a Redis master
 * killed), and the figures that say what it cost: how long until tasks
 * were processed again, and how many acknowledged samples were lost or
 * processed twice. Producer and consumers are separate broker instances,
 * as a hub and processors are separate processes.
 *
 * @module
 */
import type { BrokerInstance, Delivery, Task } from "../../core/mod.ts";
import { decodeTaskSamples } from "../../core/sample_codec.ts";

/** What a fault under load cost. */
export interface FailoverFigures {
  /** Samples whose batch the broker acknowledged (enqueue resolved). */
  acknowledged: number;
  /** Acknowledged samples never processed. */
  lost: number;
  /** Samples processed more than once (the extra runs, counted once per sample). */
  twice: number;
  /**
   * The longest time without a settled task from the fault on: the time to
   * resume after a failover (a cluster keeps serving the other masters' shards
   * until it declares itself down, so the first settle after the fault says little).
   */
  resumeMs: number;
  /** The same for acknowledged enqueues. */
  enqueueResumeMs: number;
  /** Enqueues that failed (and were sent again) during the fault. */
  enqueueFailures: number;
}

/** Options of {@link failoverUnderLoad}. */
export interface FailoverLoadOptions {
  producer: BrokerInstance;
  /** Consumer brokers; each runs `workers` reserve loops. */
  consumers: BrokerInstance[];
  /** The fault: kills a master, say. */
  fault(): Promise<void>;
  workers?: number;
  samplesPerTask?: number;
  tasksPerBatch?: number;
  /** Pause between batches (the load's pace). */
  intervalMs?: number;
  /** Steady load before the fault. */
  beforeMs?: number;
  /** Load kept up after processing resumed. */
  afterMs?: number;
  /** Longest wait for processing to resume, and then for the queues to drain. */
  deadlineMs?: number;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the load, the fault and the drain; returns the figures. Throws when
 * processing never resumes or the broker never drains within `deadlineMs`
 * (lost tasks are then reported as lost, not waited for forever).
 */
export async function failoverUnderLoad(o: FailoverLoadOptions): Promise<FailoverFigures> {
  const {
    workers = 2,
    samplesPerTask = 10,
    tasksPerBatch = 20,
    intervalMs = 10,
    beforeMs = 1500,
    afterMs = 1500,
    deadlineMs = 30_000,
  } = o;
  const run = crypto.randomUUID().slice(0, 6);
  const acknowledged = new Set<string>();
  const seen = new Map<string, number>();
  let killedAt = 0;
  const settledAt: number[] = [];
  const enqueuedAt: number[] = [];
  let enqueueFailures = 0;
  let producing = true;
  const stop = new AbortController();

  const producer = (async () => {
    for (let b = 0; producing; b++) {
      const tasks: Task[] = Array.from({ length: tasksPerBatch }, (_, i) => ({
        id: `${run}-${b}-${i}`,
        type: "telemetry.analyze",
        attempts: 0,
        created_at: Date.now(),
        checked: true,
        payload: {
          samples: Array.from({ length: samplesPerTask }, (_, j) => ({
            device: `d${b}`,
            metric: "m",
            value: j,
            ts: 1_700_000_000_000 + i * samplesPerTask + j,
            seq: i * samplesPerTask + j,
          })),
        },
      }));
      // Like the hub's gateway: the same batch again until the broker takes it
      // (or the run ends: then it was never acknowledged).
      let taken = false;
      while (!taken && producing) {
        try {
          await o.producer.enqueue(tasks);
          taken = true;
        } catch {
          enqueueFailures++;
          await pause(20);
        }
      }
      if (!taken) break;
      if (killedAt > 0) enqueuedAt.push(Date.now());
      for (const t of tasks) {
        for (const s of (t.payload as { samples: { device: string; seq: number }[] }).samples) {
          acknowledged.add(`${s.device}/${s.seq}`);
        }
      }
      await pause(intervalMs);
    }
  })();

  const handle = (d: Delivery) => {
    for (const s of decodeTaskSamples(d.task).samples) {
      const id = `${s.device}/${s.seq}`;
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
  };
  const loops = o.consumers.flatMap((broker, c) =>
    Array.from({ length: workers }, async (_, w) => {
      while (!stop.signal.aborted) {
        try {
          const deliveries = await broker.reserve(`w${c}-${w}`, 20, stop.signal);
          if (deliveries.length === 0) continue;
          await broker.started(deliveries);
          deliveries.forEach(handle);
          await broker.settle(deliveries.map((delivery) => ({ delivery, outcome: "completed" })));
          if (killedAt > 0) settledAt.push(Date.now());
        } catch {
          await pause(20);
        }
      }
    })
  );

  const until = async (what: string, check: () => Promise<boolean> | boolean) => {
    const end = Date.now() + deadlineMs;
    while (!await check()) {
      if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
      await pause(50);
    }
  };
  try {
    await pause(beforeMs);
    killedAt = Date.now();
    await o.fault();
    // Resumed: both going again for a second, past the fault's first effects.
    const going = (times: number[]) =>
      times.length > 0 && Date.now() - times[times.length - 1]! < 200;
    let goingSince = 0;
    await until("processing to resume", () => {
      if (!going(settledAt) || !going(enqueuedAt)) goingSince = 0;
      else if (goingSince === 0) goingSince = Date.now();
      return goingSince > 0 && Date.now() - goingSince > 1000;
    });
    await pause(afterMs);
    producing = false;
    await producer;
    // Drained: nothing left to deliver (recovered leases included) on two looks half a
    // second apart; what is missing then is lost, and every redelivery was counted.
    let emptySince = 0;
    await until("the queues to drain", async () => {
      const depth = await o.producer.depth().catch(() => undefined);
      if (!depth || depth.queued + depth.inflight + depth.delayed > 0) emptySince = 0;
      else if (emptySince === 0) emptySince = Date.now();
      return emptySince > 0 && Date.now() - emptySince > 500;
    });
  } finally {
    producing = false;
    stop.abort();
    await Promise.allSettled([producer, ...loops]);
  }
  let lost = 0;
  for (const id of acknowledged) if (!seen.has(id)) lost++;
  let twice = 0;
  for (const n of seen.values()) if (n > 1) twice++;
  const longestGap = (times: number[]) =>
    [killedAt, ...times].reduce(
      (gap, t, i, all) => i === 0 ? 0 : Math.max(gap, t - all[i - 1]!),
      0,
    );
  return {
    acknowledged: acknowledged.size,
    lost,
    twice,
    resumeMs: longestGap(settledAt),
    enqueueResumeMs: longestGap(enqueuedAt),
    enqueueFailures,
  };
}

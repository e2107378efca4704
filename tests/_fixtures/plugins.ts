/**
 * Plugins used by the runtime tests: a device that emits a fixed number of
 * samples, a handler that records what it sees, and one that fails on
 * purpose. Built with the public SDK only, like any third-party plugin.
 *
 * @module
 */
import {
  defineBroker,
  defineDevice,
  defineHandler,
  duration,
  PermanentError,
  RetryableError,
  type Sample,
  type SampleInput,
  sleepUnlessAborted,
  UnavailableError,
  z,
} from "../../core/mod.ts";

/** What a `record` handler saw, by its `key`. */
export interface Recording {
  /** `device/metric/seq` of every sample seen, in order. */
  seen: string[];
  /** Every sample seen, in order. */
  samples: Sample[];
  tasks: Set<string>;
  attemptsByTask: Map<string, number>;
}

/** Recordings by key; tests read and clear them. */
export const recordings = new Map<string, Recording>();

/** The recording for `key` (created empty). */
export function recording(key: string): Recording {
  let r = recordings.get(key);
  if (!r) {
    recordings.set(key, r = { seen: [], samples: [], tasks: new Set(), attemptsByTask: new Map() });
  }
  return r;
}

/** Emits `count` samples in batches of `batch`, every `every`, then returns. */
export const fixedDevice = defineDevice({
  name: "fixed",
  summary: "Emits a fixed number of samples (tests)",
  config: z.strictObject({
    count: z.int().min(0).describe("Samples to emit"),
    batch: z.int().min(1).default(10).describe("Samples per emitted batch"),
    every: duration().prefault("0ms").describe("Pause between batches"),
    metric: z.string().default("temperature").describe("Metric name"),
  }),
  create(config, ctx) {
    return {
      async run(io) {
        io.up();
        let seq = 0;
        while (seq < config.count && !io.signal.aborted) {
          const batch: Sample[] = [];
          for (let i = 0; i < config.batch && seq < config.count; i++, seq++) {
            batch.push({
              device: ctx.name,
              metric: config.metric,
              value: seq,
              ts: ctx.clock.now(),
              seq,
            });
          }
          const pending = io.emit(batch);
          if (pending) await pending;
          if (config.every > 0 && !await sleepUnlessAborted(ctx.clock, config.every, io.signal)) {
            return;
          }
        }
      },
    };
  },
});

/** Records every sample and task it sees into `recordings`. */
export const recordHandler = defineHandler({
  name: "record",
  summary: "Records samples it sees (tests)",
  config: z.strictObject({
    key: z.string().describe("Recording key"),
    delay: duration().prefault("0ms").describe("Time each task takes"),
  }),
  create(config, ctx) {
    const rec = recording(config.key);
    return {
      async handle(samples, hctx) {
        if (config.delay > 0) await ctx.clock.sleep(config.delay);
        rec.tasks.add(hctx.task.id);
        rec.attemptsByTask.set(hctx.task.id, hctx.attempt);
        for (const s of samples) {
          rec.seen.push(`${s.device}/${s.metric}/${s.seq}`);
          rec.samples.push({ ...s });
        }
      },
    };
  },
});

/** Fails each task's first `fail_times` attempts, or always with `permanent`. */
export const flakyHandler = defineHandler({
  name: "flaky",
  summary: "Fails on purpose (tests)",
  config: z.strictObject({
    fail_times: z.int().min(0).default(1).describe("Attempts of each task that fail"),
    permanent: z.boolean().default(false).describe("Fail with a PermanentError"),
    message: z.string().default("Simulated failure").describe("Error message"),
  }),
  create(config) {
    return {
      handle(_samples, ctx) {
        if (config.permanent) throw new PermanentError(config.message);
        if (ctx.attempt <= config.fail_times) {
          throw new RetryableError(`${config.message} (attempt ${ctx.attempt})`);
        }
      },
    };
  },
});

/** A broker that is never reachable: enqueue always fails, reserve waits; the core contract alone. */
export const unreachableBroker = defineBroker({
  name: "unreachable",
  summary: "A broker that refuses everything (tests)",
  config: z.strictObject({}),
  create() {
    const down = () => Promise.reject(new Error("Connection refused"));
    return {
      shared: true,
      capabilities: {},
      enqueue: down,
      reserve: (_consumer, _max, signal) =>
        new Promise((resolve) => signal.addEventListener("abort", () => resolve([]))),
      started: () => Promise.resolve(),
      settle: down,
      depth: () => Promise.resolve({ queued: 0, inflight: 0, delayed: 0, dead: 0 }),
      health: down,
      close: () => Promise.resolve(),
    };
  },
});

/** A handler that never returns and ignores its abort signal. */
export const hangHandler = defineHandler({
  name: "hang",
  summary: "Never finishes (tests)",
  config: z.strictObject({}),
  create() {
    return { handle: () => new Promise<void>(() => {}) };
  },
});

/** A device that ignores its abort signal. */
export const stubbornDevice = defineDevice({
  name: "stubborn",
  summary: "Never stops (tests)",
  config: z.strictObject({}),
  create() {
    return { run: () => new Promise<void>(() => {}) };
  },
});

/** Works until aborted, then throws (a handler cut short by shutdown). */
export const abortableHandler = defineHandler({
  name: "abortable",
  summary: "Runs until its signal aborts, then throws (tests)",
  config: z.strictObject({}),
  create() {
    return {
      handle: (_samples, ctx) =>
        new Promise<void>((_, reject) => {
          ctx.signal.addEventListener("abort", () => reject(new Error("Interrupted")), {
            once: true,
          });
        }),
    };
  },
});

/**
 * Emits the configured items once, as one batch exactly as written (valid
 * samples or not), then stays up until stopped: a device sending bad data.
 */
export const scriptedDevice = defineDevice({
  name: "scripted",
  summary: "Emits the given items once, unchecked (tests)",
  config: z.strictObject({
    items: z.array(z.unknown()).describe("What to emit, as one batch"),
  }),
  create(config) {
    return {
      async run(io) {
        io.up();
        // Deliberately unchecked: the runtime's edge must refuse what is not a sample.
        await io.emit(structuredClone(config.items) as SampleInput[]);
        await new Promise<void>((resolve) => {
          if (io.signal.aborted) resolve();
          io.signal.addEventListener("abort", () => resolve(), { once: true });
        });
      },
    };
  },
});

/**
 * Fails permanently on any batch holding a sample whose value is `value`
 * (and names none of them): the runtime has to find the culprits itself.
 */
export const poisonHandler = defineHandler({
  name: "poison",
  summary: "Fails permanently on batches holding a given value (tests)",
  config: z.strictObject({
    value: z.number().describe("The poisonous value"),
  }),
  create(config) {
    return {
      handle(samples) {
        if (samples.some((s) => s.value === config.value)) {
          throw new PermanentError(`Cannot take value ${config.value}`);
        }
      },
    };
  },
});

/** Multiplies every value by `factor`: a handler whose output differs from its input. */
export const scaleHandler = defineHandler({
  name: "scale",
  summary: "Multiplies values (tests)",
  config: z.strictObject({ factor: z.number().default(10).describe("Multiplier") }),
  create(config) {
    return { handle: (samples) => samples.map((s) => ({ ...s, value: s.value * config.factor })) };
  },
});

/** Returns every value as a string: a handler breaking the sample contract. */
export const stringifyHandler = defineHandler({
  name: "stringify",
  summary: "Returns values as strings (tests)",
  config: z.strictObject({}),
  create() {
    // Deliberately wrong: the runtime must catch it, not the store.
    return { handle: (samples) => samples.map((s) => ({ ...s, value: String(s.value) }) as never) };
  },
});

/** Whether the `outage` handler's dependency is down, by key; tests flip it. */
export const outages = new Map<string, boolean>();

/** Throws UnavailableError while `outages.get(key)` is true, then records like `record`. */
export const outageHandler = defineHandler({
  name: "outage",
  summary: "Fails with UnavailableError while its dependency is down (tests)",
  config: z.strictObject({ key: z.string().describe("Outage and recording key") }),
  create(config) {
    const rec = recording(config.key);
    return {
      handle(samples, hctx) {
        if (outages.get(config.key)) throw new UnavailableError("Dependency unreachable");
        rec.attemptsByTask.set(hctx.task.id, hctx.attempt);
        for (const s of samples) rec.seen.push(`${s.device}/${s.metric}/${s.seq}`);
      },
    };
  },
});

/**
 * The helpers each broker conformance case gets (see `_conformance.ts`).
 *
 * @module
 */
import {
  type BrokerCapability,
  type BrokerInstance,
  type DeadLetterBrowsing,
  type Delivery,
  hasCapability,
  type TaskRecords,
} from "./broker.ts";
import type { Task, TaskError, TaskRecord } from "./task.ts";
import { type FakeClock, flushMicrotasks } from "./_fake_clock.ts";

/** A fresh, empty broker for one conformance test, and how to tear it down. */
export interface BrokerFixture {
  /** The broker under test, created for this case alone. */
  broker: BrokerInstance;
  /** The clock the broker was given, or `null` when it uses real time. */
  clock: FakeClock | null;
  /** Closes the broker and removes anything it stored (keys, files). */
  cleanup(): Promise<void>;
}

/** Helpers handed to each conformance case. */
export interface BrokerKit extends BrokerFixture {
  /** A new task whose id is unique to this test run. */
  task(name: string, extra?: Partial<Task>): Task;
  /** Delay long enough to observe with the fake clock or with real timers. */
  delay: number;
  /** Lets fake or real time pass. */
  elapse(ms: number): Promise<void>;
  /** Lets pending broker work run without moving fake time. */
  settleDown(): Promise<void>;
  /** Reserves what is available now (gives up after a real-time guard if nothing is). */
  reserveNow(max: number, consumer?: string): Promise<Delivery[]>;
  /** Reserves whatever arrives while `ms` of (fake or real) time pass. */
  reserveWithin(ms: number, max: number, consumer?: string): Promise<Delivery[]>;
  /** Starts and completes every delivery. */
  runAll(deliveries: readonly Delivery[]): Promise<void>;
  /** The broker's task records, when it declares `taskRecords`. */
  records: TaskRecords | undefined;
  /** The broker's dead-letter browsing, when it declares `deadLetterBrowsing`. */
  deadLetters: DeadLetterBrowsing | undefined;
  /**
   * Checks the task record of `id` with `check` when the broker keeps
   * records; a broker without them has nothing to check here.
   */
  expectRecord(id: string, check: (record: TaskRecord | undefined) => void): Promise<void>;
}

const REAL_GUARD_MS = 2000;

function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function taskError(message: string, permanent = false): TaskError {
  return { message, name: permanent ? "PermanentError" : "Error", permanent };
}

export function idsOf(deliveries: readonly Delivery[]): string[] {
  return deliveries.map((d) => d.task.id);
}

export function kit(fixture: BrokerFixture): BrokerKit {
  const { broker, clock } = fixture;
  const run = Math.random().toString(36).slice(2, 8);
  const elapse = (ms: number) => clock ? clock.advance(ms) : realSleep(ms);
  const settleDown = () => clock ? flushMicrotasks() : realSleep(20);
  return {
    ...fixture,
    delay: clock ? 1000 : 60,
    elapse,
    settleDown,
    task: (name, extra = {}) => ({
      id: `${run}-${name}`,
      type: "test.task",
      payload: { name },
      attempts: 0,
      created_at: clock?.now() ?? Date.now(),
      ...extra,
    }),
    async reserveNow(max, consumer = "c1") {
      const abort = new AbortController();
      const guard = setTimeout(() => abort.abort(), REAL_GUARD_MS);
      try {
        return await broker.reserve(consumer, max, abort.signal);
      } finally {
        clearTimeout(guard);
      }
    },
    async reserveWithin(ms, max, consumer = "c1") {
      const abort = new AbortController();
      if (!clock) {
        const timer = setTimeout(() => abort.abort(), ms);
        try {
          return await broker.reserve(consumer, max, abort.signal);
        } finally {
          clearTimeout(timer);
        }
      }
      const reserved = broker.reserve(consumer, max, abort.signal);
      await clock.advance(ms);
      abort.abort();
      return await reserved;
    },
    async runAll(deliveries) {
      await broker.started(deliveries);
      await broker.settle(deliveries.map((delivery) => ({ delivery, outcome: "completed" })));
    },
    records: hasCapability(broker, "taskRecords") ? broker : undefined,
    deadLetters: hasCapability(broker, "deadLetterBrowsing") ? broker : undefined,
    async expectRecord(id, check) {
      if (hasCapability(broker, "taskRecords")) check(await broker.getTask(id));
    },
  };
}

/** How a conformance case is registered: its title, body and the capability it needs. */
export type ConformanceCase = (
  title: string,
  fn: (k: BrokerKit) => Promise<void>,
  options?: {
    needs?: BrokerCapability | readonly BrokerCapability[];
    otherwise?: (k: BrokerKit) => Promise<void>;
  },
) => void;

/**
 * Registers conformance cases of the broker `name` as `Deno.test`s, each on
 * a fresh fixture. With `needs`, a case runs when the broker declares those
 * capabilities; otherwise `otherwise` runs if given, else an ignored step
 * says what was not checked.
 */
export function caseRunner(
  name: string,
  makeBroker: () => Promise<BrokerFixture>,
): ConformanceCase {
  return (title, fn, { needs, otherwise } = {}) =>
    Deno.test(`${name} broker: ${title}`, async (t) => {
      const fixture = await makeBroker();
      try {
        const k = kit(fixture);
        const missing = [needs ?? []].flat().filter((c) => k.broker.capabilities[c] !== true);
        if (missing.length === 0) await fn(k);
        else if (otherwise) await otherwise(k);
        else {
          await t.step({
            name: `not checked: the broker does not declare ${
              missing.map((c) => `"${c}"`).join(" and ")
            }`,
            ignore: true,
            fn: () => {},
          });
        }
      } finally {
        await fixture.cleanup();
      }
    });
}

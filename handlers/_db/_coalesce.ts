/**
 * Group commit for the handlers' writes: calls made while earlier ones are
 * in flight wait and go to the database together, as one statement. Workers
 * write concurrently, and every statement costs a round trip, a commit (a
 * WAL flush) and, for aggregates, one update of each hot row; merging the
 * waiting calls pays those once. No call waits for a timer: a call made
 * while nothing is in flight runs at once.
 *
 * @module
 */

/** What one call of a batch came to. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

/** Options of {@link Coalescer}. */
export interface CoalescerOptions<I> {
  /** Most batches in flight at once. */
  inFlight: number;
  /** Most calls in one batch. */
  maxCalls: number;
  /** Whether `next` may join `batch` (e.g. a size cap, or no repeated key). */
  fits?: (batch: readonly I[], next: I) => boolean;
}

interface Waiting<I, O> {
  input: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

/**
 * Runs calls in batches. `run` gets the inputs of one batch and settles each
 * of them (in order); a call rejects only with its own error.
 */
export class Coalescer<I, O> {
  readonly #run: (inputs: I[]) => Promise<Settled<O>[]>;
  readonly #o: CoalescerOptions<I>;
  #waiting: Waiting<I, O>[] = [];
  #running = 0;

  constructor(run: (inputs: I[]) => Promise<Settled<O>[]>, options: CoalescerOptions<I>) {
    this.#run = run;
    this.#o = options;
  }

  call(input: I): Promise<O> {
    const { promise, resolve, reject } = Promise.withResolvers<O>();
    this.#waiting.push({ input, resolve, reject });
    this.#pump();
    return promise;
  }

  #pump(): void {
    while (this.#running < this.#o.inFlight && this.#waiting.length > 0) {
      const batch = this.#next();
      this.#running++;
      this.#settle(batch).finally(() => {
        this.#running--;
        this.#pump();
      });
    }
  }

  /** The first waiting call and every later one that fits with it, in order. */
  #next(): Waiting<I, O>[] {
    const { maxCalls, fits } = this.#o;
    const batch: Waiting<I, O>[] = [];
    const inputs: I[] = [];
    const left: Waiting<I, O>[] = [];
    for (const w of this.#waiting) {
      if (batch.length < maxCalls && (batch.length === 0 || !fits || fits(inputs, w.input))) {
        batch.push(w);
        inputs.push(w.input);
      } else left.push(w);
    }
    this.#waiting = left;
    return batch;
  }

  async #settle(batch: Waiting<I, O>[]): Promise<void> {
    let results: Settled<O>[];
    try {
      results = await this.#run(batch.map((w) => w.input));
    } catch (error) {
      results = batch.map(() => ({ ok: false, error }));
    }
    batch.forEach((w, i) => {
      const r = results[i];
      if (r?.ok) w.resolve(r.value);
      else w.reject(r ? r.error : new Error("The batch gave no result for this call"));
    });
  }
}

/** Settles `fn()`: its value or its error. */
export async function settle<O>(fn: () => Promise<O>): Promise<Settled<O>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

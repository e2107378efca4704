/**
 * Waking the SQLite broker's idle consumers: on a commit here that made
 * tasks available, at the due time of the earliest delayed task, and when
 * `PRAGMA data_version` shows that another process committed.
 *
 * @module
 */
import type { BrokerState } from "./_state.ts";
import type { CommitListener } from "./_write_queue.ts";

/** The consumers waiting for work, and the timer and poll that wake them. */
export class Wakeups implements CommitListener {
  readonly #st: BrokerState;
  /** Whether enqueues wait for room (they too want the poll). */
  readonly #enqueuesWait: () => boolean;
  /** Runs the waiting enqueues again. */
  readonly #retryEnqueues: () => void;
  readonly #consumers = new Set<() => void>();
  #timer: { due: number; abort: AbortController } | undefined;
  #poll: ReturnType<typeof setInterval> | undefined;

  constructor(st: BrokerState, enqueuesWait: () => boolean, retryEnqueues: () => void) {
    this.#st = st;
    this.#enqueuesWait = enqueuesWait;
    this.#retryEnqueues = retryEnqueues;
  }

  /** Resolves when tasks may have become available or `signal` aborts. */
  waitForWork(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#consumers.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      this.#consumers.add(wake);
      signal.addEventListener("abort", wake, { once: true });
      this.#armTimer();
      this.updatePoll();
    });
  }

  wake(): void {
    this.#st.generation++;
    for (const wake of [...this.#consumers]) wake();
  }

  /** Cancels the due-time timer (on close). */
  cancelTimer(): void {
    this.#timer?.abort.abort();
    this.#timer = undefined;
  }

  /** One timer for the earliest delayed task while a reserve waits. */
  #armTimer(): void {
    const st = this.#st;
    const due = st.nextDue;
    if (due === undefined || this.#consumers.size === 0 || st.closed) return;
    if (this.#timer && this.#timer.due <= due) return;
    this.#timer?.abort.abort();
    const timer = { due, abort: new AbortController() };
    this.#timer = timer;
    st.clock.sleep(Math.max(0, due - st.clock.now()), timer.abort.signal).then(
      () => {
        if (this.#timer !== timer) return;
        this.#timer = undefined;
        st.nextDue = undefined;
        this.wake();
      },
      () => {}, // cancelled by an earlier due time or by close()
    );
  }

  /**
   * Polls `PRAGMA data_version` while someone waits (a consumer for tasks,
   * an enqueue for room): it changes when another process commits.
   */
  updatePoll(): void {
    const needed = !this.#st.closed && (this.#consumers.size > 0 || this.#enqueuesWait());
    if (needed && this.#poll === undefined) {
      this.#poll = setInterval(() => this.#checkVersion(), this.#st.o.poll_interval);
    } else if (!needed && this.#poll !== undefined) {
      clearInterval(this.#poll);
      this.#poll = undefined;
    }
  }

  #checkVersion(): void {
    const st = this.#st;
    let version: number;
    try {
      version = Number(st.s.dataVersion.get()?.data_version ?? -1);
    } catch {
      return; // busy or closing: the next tick looks again
    }
    if (version === st.dataVersion) return;
    st.dataVersion = version;
    st.nextDue = undefined; // another process may have scheduled a retry
    this.wake();
    if (this.#enqueuesWait()) this.#retryEnqueues();
  }
}

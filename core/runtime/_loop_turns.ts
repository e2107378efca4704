/**
 * Turns of the event loop for workers that would otherwise hold it: a
 * broker that answers through promises alone never lets timers and I/O run
 * while it has tasks.
 *
 * @module
 */

/**
 * How long the workers may run tasks back to back before they let timers
 * and I/O run. A broker that answers through promises alone (sqlite's write
 * queue, the memory broker) never gives the event loop a turn while it has
 * tasks, and a backlog would hold the admin API, broker heartbeats and
 * thread messages until it is empty.
 */
const TURN_EVERY_MS = 50;
/**
 * Resolves after a turn of the event loop in which timers run and I/O is
 * polled. A timer it must be: a message to oneself, Deno's `setImmediate` or
 * an operation that completes at once let timers run but not always sockets.
 */
function eventLoopTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Gives timers and I/O a turn once the workers have kept the loop for
 * {@link TURN_EVERY_MS}. A zero-delay timer notes every turn the loop takes
 * anyway (a broker that waits on the network, devices feeding the
 * gateway), so only workers that really hold the loop pay for a turn.
 */
export class LoopTurns {
  /** When the event loop last had a turn while the workers were busy (performance.now()). */
  #lastTurn = performance.now();
  #turnSeen: ReturnType<typeof setTimeout> | undefined;

  /** Resolves at once, or after a turn of the loop when the workers held it too long. */
  async yieldIfHeld(): Promise<void> {
    // Real time on purpose: this is about the CPU the loop spent, not about task time.
    this.#turnSeen ??= setTimeout(() => {
      this.#turnSeen = undefined;
      this.#lastTurn = performance.now();
    }, 0);
    if (performance.now() - this.#lastTurn < TURN_EVERY_MS) return;
    await eventLoopTurn();
    this.#lastTurn = performance.now();
  }

  /** Clears the pending timer (the pool stopped). */
  stop(): void {
    clearTimeout(this.#turnSeen);
    this.#turnSeen = undefined;
  }
}

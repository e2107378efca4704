/**
 * Dead-letter browsing on Redis: pages read from a cursor on, and replay
 * or purge of the matching letters, a chunk of the queue per script call.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { DeadLetter, DeadLetterPage, DeadLetterSelector } from "../../core/mod.ts";
import {
  decodeDeadLetter,
  encodeTask,
  matchesSelector,
  QUEUE_INDEX,
  type RedisKeys,
  type StoredDeadLetter,
} from "./_codec.ts";
import type { RedisConnections, ScriptArg } from "./_connections.ts";

/** A dead letter as the API shows it (the seq is the broker's cursor). */
function withoutSeq({ seq: _seq, ...letter }: StoredDeadLetter): DeadLetter {
  return letter;
}

/** The dead-letter queue of one broker. */
export class RedisDeadLetters {
  readonly #conn: RedisConnections;
  readonly #keys: RedisKeys;
  readonly #now: () => number;

  constructor(conn: RedisConnections, keys: RedisKeys, now: () => number) {
    this.#conn = conn;
    this.#keys = keys;
    this.#now = now;
  }

  /**
   * The dead letters after seq `after`, oldest first, in chunks of `size`
   * read from the cursor's place on (found by bisection in Redis), so
   * memory and time follow what the caller reads, not the queue's length.
   */
  async *#scan(
    after: number,
    size: number,
  ): AsyncGenerator<{ raw: string; letter: StoredDeadLetter }[]> {
    for (;;) {
      const raws = await this.#conn.script("thDeadLetterPage", [this.#keys.dlq], [
        after,
        size,
      ]) as string[];
      const chunk: { raw: string; letter: StoredDeadLetter }[] = [];
      const from = after;
      for (const raw of raws) {
        const letter = decodeDeadLetter(raw);
        if (!letter) continue;
        after = Math.max(after, letter.seq);
        chunk.push({ raw, letter });
      }
      yield chunk;
      // A full chunk of elements the broker did not write would not move the cursor.
      if (raws.length < size || after === from) return;
    }
  }

  /**
   * One page of dead letters, oldest first. Reads the list in chunks from
   * the cursor on (found in Redis by bisection), so a page costs about its
   * own size, not the whole dead-letter queue's.
   */
  async list(
    selector: DeadLetterSelector & { limit?: number; cursor?: string },
  ): Promise<DeadLetterPage> {
    const limit = selector.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`Limit must be a positive integer, got "${limit}"`);
    }
    let after = -1;
    if (selector.cursor !== undefined) {
      after = Number(selector.cursor);
      if (!/^\d+$/.test(selector.cursor) || !Number.isSafeInteger(after)) {
        throw new RangeError(`Invalid dead-letter cursor "${selector.cursor}"`);
      }
    }
    const items: StoredDeadLetter[] = [];
    for await (
      const chunk of this.#scan(after, Math.min(Math.max(limit + 1, 100), 1000))
    ) {
      for (const { letter } of chunk) {
        if (!matchesSelector(letter, selector)) continue;
        if (items.length === limit) {
          // One more match exists: the next page starts after the last item taken.
          return { items: items.map(withoutSeq), cursor: String(items[limit - 1]!.seq) };
        }
        items.push(letter);
      }
    }
    return { items: items.map(withoutSeq) };
  }

  /**
   * Replays or purges the matching dead letters, one script call per chunk
   * of the queue. Letters dead-lettered after the call began (a replayed
   * task failing again) are left for the next call.
   */
  async change(action: "replay" | "purge", selector: DeadLetterSelector): Promise<number> {
    const keys = this.#keys;
    const last = Number(
      await this.#conn.redis.get(keys.dlqSeq).catch((e) => {
        throw this.#conn.wrap(e);
      }) ?? 0,
    );
    let changed = 0;
    let wake = false;
    for await (const chunk of this.#scan(-1, 500)) {
      const args: ScriptArg[] = [];
      for (const { raw, letter } of chunk) {
        if (letter.seq > last || !matchesSelector(letter, selector)) continue;
        const task = letter.task;
        // An undecodable message is replayed as it came, so it fails the same way.
        const body = letter.raw_base64 !== undefined
          ? Buffer.from(letter.raw_base64, "base64")
          : letter.raw ?? encodeTask({ ...task, attempts: 0 });
        const queue = QUEUE_INDEX[task.priority ?? "normal"];
        if (queue !== 2) wake = true;
        args.push(raw, task.id, action === "replay" ? body : "", queue);
      }
      if (args.length > 0) {
        changed += Number(
          await this.#conn.script("thDeadLetters", [keys.dlq, ...keys.queues], [
            this.#now(),
            keys.taskPrefix,
            keys.taskSuffix,
            action,
            ...args,
          ]),
        );
      }
      if (chunk.some(({ letter }) => letter.seq > last)) break;
    }
    if (action === "replay" && wake) this.#conn.wakeConsumers();
    return changed;
  }
}

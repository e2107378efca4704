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

/** A dead letter as the API shows it (the seq is the broker's cursor, the order its sort key). */
function withoutSeq({ seq: _seq, ...letter }: StoredDeadLetter): DeadLetter {
  delete (letter as { order?: number }).order;
  return letter;
}

/** Checks a page size. */
function pageLimit(selector: { limit?: number }): number {
  const limit = selector.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`Limit must be a positive integer, got "${limit}"`);
  }
  return limit;
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
    const limit = pageLimit(selector);
    let after = -1;
    if (selector.cursor !== undefined) {
      after = Number(selector.cursor);
      if (!/^\d+$/.test(selector.cursor) || !Number.isSafeInteger(after)) {
        throw new RangeError(`Invalid dead-letter cursor "${selector.cursor}"`);
      }
    }
    const items = await this.matching(after, selector, limit + 1);
    if (items.length > limit) {
      // One more match exists: the next page starts after the last item taken.
      return {
        items: items.slice(0, limit).map(withoutSeq),
        cursor: String(items[limit - 1]!.seq),
      };
    }
    return { items: items.map(withoutSeq) };
  }

  /** Up to `count` dead letters after seq `after` that match `selector`, oldest first. */
  async matching(
    after: number,
    selector: DeadLetterSelector,
    count: number,
  ): Promise<StoredDeadLetter[]> {
    const items: StoredDeadLetter[] = [];
    for await (const chunk of this.#scan(after, Math.min(Math.max(count, 100), 1000))) {
      for (const { letter } of chunk) {
        if (!matchesSelector(letter, selector)) continue;
        items.push(letter);
        if (items.length === count) return items;
      }
    }
    return items;
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

/** Where a dead letter sits among those of every shard: time, place in its settle call, shard. */
function sortKey(letter: StoredDeadLetter): [number, number] {
  return [letter.dead_lettered_at, (letter as { order?: number }).order ?? 0];
}

/**
 * The dead-letter queues of every shard as one: pages merge the shards'
 * queues oldest first (by time of dead-lettering, then by place in the
 * settlement that dead-lettered them, then by shard), with a cursor that
 * holds each shard's place. One shard is passed straight through, so a
 * standalone Redis keeps its cursors.
 */
export class ShardedDeadLetters {
  readonly #shards: readonly RedisDeadLetters[];

  constructor(shards: readonly RedisDeadLetters[]) {
    this.#shards = shards;
  }

  async list(
    selector: DeadLetterSelector & { limit?: number; cursor?: string },
  ): Promise<DeadLetterPage> {
    if (this.#shards.length === 1) return await this.#shards[0]!.list(selector);
    const limit = pageLimit(selector);
    const after = this.#decodeCursor(selector.cursor);
    // Each shard's next matches; the page is the oldest `limit` of them all.
    const found = await Promise.all(
      this.#shards.map((shard, i) => shard.matching(after[i]!, selector, limit + 1)),
    );
    const merged = found.flatMap((letters, shard) => letters.map((letter) => ({ letter, shard })))
      .sort((a, b) => {
        const [ta, oa] = sortKey(a.letter);
        const [tb, ob] = sortKey(b.letter);
        return ta - tb || oa - ob || a.shard - b.shard || a.letter.seq - b.letter.seq;
      });
    const page = merged.slice(0, limit);
    const items = page.map(({ letter }) => withoutSeq(letter));
    if (merged.length <= limit) return { items };
    for (const { letter, shard } of page) after[shard] = letter.seq;
    return { items, cursor: after.map((seq) => seq + 1).join(".") };
  }

  /** Each shard's seq to start after, from a cursor `list()` made (every shard from the head without one). */
  #decodeCursor(cursor: string | undefined): number[] {
    if (cursor === undefined) return this.#shards.map(() => -1);
    const parts = cursor.split(".");
    if (parts.length !== this.#shards.length || !parts.every((p) => /^\d{1,15}$/.test(p))) {
      throw new RangeError(`Invalid dead-letter cursor "${cursor}"`);
    }
    return parts.map((p) => Number(p) - 1);
  }

  /** Replays or purges the matching dead letters of every shard. */
  async change(action: "replay" | "purge", selector: DeadLetterSelector): Promise<number> {
    const counts = await Promise.all(this.#shards.map((shard) => shard.change(action, selector)));
    return counts.reduce((sum, n) => sum + n, 0);
  }
}

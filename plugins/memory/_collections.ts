/**
 * Small O(1) / O(log n) containers for the memory broker: a ring-buffer
 * deque for the priority queues and a binary min-heap for delayed tasks.
 *
 * @module
 */

const MIN_CAPACITY = 16;

/**
 * A double-ended queue on a power-of-two ring buffer: `push`, `unshift` and
 * `shift` are O(1) (amortized for growth), unlike `Array.prototype.shift`,
 * which copies the whole array.
 */
export class Deque<T> {
  #buffer: (T | undefined)[] = new Array(MIN_CAPACITY);
  #mask = MIN_CAPACITY - 1;
  #head = 0;
  #size = 0;

  get length(): number {
    return this.#size;
  }

  /** Adds at the back. */
  push(value: T): void {
    if (this.#size === this.#buffer.length) this.#grow();
    this.#buffer[(this.#head + this.#size) & this.#mask] = value;
    this.#size++;
  }

  /** Adds at the front. */
  unshift(value: T): void {
    if (this.#size === this.#buffer.length) this.#grow();
    this.#head = (this.#head - 1) & this.#mask;
    this.#buffer[this.#head] = value;
    this.#size++;
  }

  /** Removes and returns the front, or `undefined` when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const value = this.#buffer[this.#head];
    this.#buffer[this.#head] = undefined; // let the value be collected
    this.#head = (this.#head + 1) & this.#mask;
    this.#size--;
    return value;
  }

  /** The front without removing it. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#buffer[this.#head];
  }

  /** Front to back. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#size; i++) yield this.#buffer[(this.#head + i) & this.#mask] as T;
  }

  #grow(): void {
    const old = this.#buffer;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#buffer = next;
    this.#mask = next.length - 1;
    this.#head = 0;
  }
}

/** What the heap orders by: due time, then insertion order for ties. */
export interface Due {
  due: number;
  order: number;
}

/** A binary min-heap ordered by `due`, then `order` (so equal due times stay FIFO). */
export class DueHeap<T extends Due> {
  #items: T[] = [];

  get length(): number {
    return this.#items.length;
  }

  /** The earliest item without removing it. */
  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    const items = this.#items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, items[parent]!)) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  /** Removes and returns the earliest item. */
  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    const n = items.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(items[right]!, items[left]!) ? right : left;
      if (!before(items[child]!, last)) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }
}

function before(a: Due, b: Due): boolean {
  return a.due < b.due || (a.due === b.due && a.order < b.order);
}

/**
 * Pure Modbus decoding and request planning: register words → numbers for
 * each data type, byte and word order, scale and offset; values of a polling
 * group → the fewest contiguous reads the register layout allows. No I/O.
 *
 * @module
 */

/** The four Modbus data tables. */
export type Table = "holding" | "input" | "coil" | "discrete";
/** Register data types. */
export type DataType = "int16" | "uint16" | "int32" | "uint32" | "float32" | "float64";
/** Order of bytes within a register, or of registers within a value. */
export type Order = "big" | "little";

/** Registers each data type spans. */
export const TYPE_WORDS: Readonly<Record<DataType, number>> = {
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  float32: 2,
  float64: 4,
};

/** The most a single read may ask for, per table (Modbus application protocol 1.1b3, 6.1–6.4). */
export const MAX_READ: Readonly<Record<Table, number>> = {
  holding: 125,
  input: 125,
  coil: 2000,
  discrete: 2000,
};

/** Modbus function code reading each table. */
export const FUNCTION_CODE: Readonly<Record<Table, number>> = {
  coil: 1,
  discrete: 2,
  holding: 3,
  input: 4,
};

/** Names of the tables in messages. */
export const TABLE_NAME: Readonly<Record<Table, string>> = {
  holding: "holding register",
  input: "input register",
  coil: "coil",
  discrete: "discrete input",
};

/** Standard exception codes (Modbus application protocol 1.1b3, 7). */
export const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: "illegal function",
  2: "illegal data address",
  3: "illegal data value",
  4: "server device failure",
  5: "acknowledge",
  6: "server device busy",
  8: "memory parity error",
  10: "gateway path unavailable",
  11: "gateway target device failed to respond",
};

/** One value to read: where it is and how it becomes a sample value. */
export interface ValueSpec {
  metric: string;
  unit_id: number;
  table: Table;
  address: number;
  type: DataType;
  byte_order: Order;
  word_order: Order;
  scale: number;
  offset: number;
  unit?: string | undefined;
}

/** Registers (or bits) a value occupies. */
export function valueWidth(v: Pick<ValueSpec, "table" | "type">): number {
  return v.table === "coil" || v.table === "discrete" ? 1 : TYPE_WORDS[v.type];
}

/**
 * Decodes the registers `words` (16-bit, as read off the wire) into a
 * number of `type`. `word_order: big` means the first register holds the
 * most significant word (the Modbus convention, "ABCD"); `byte_order: big`
 * keeps each register's high byte first. Little/little gives "DCBA",
 * little word order alone "CDAB", little byte order alone "BADC".
 */
export function decodeWords(
  words: readonly number[],
  type: DataType,
  byteOrder: Order,
  wordOrder: Order,
): number {
  const n = TYPE_WORDS[type];
  if (words.length !== n) {
    throw new RangeError(`A ${type} needs ${n} registers, got ${words.length}`);
  }
  const bytes = new Uint8Array(n * 2);
  for (let i = 0; i < n; i++) {
    const word = words[wordOrder === "big" ? i : n - 1 - i]! & 0xffff;
    const hi = word >> 8;
    const lo = word & 0xff;
    bytes[i * 2] = byteOrder === "big" ? hi : lo;
    bytes[i * 2 + 1] = byteOrder === "big" ? lo : hi;
  }
  const view = new DataView(bytes.buffer);
  switch (type) {
    case "int16":
      return view.getInt16(0);
    case "uint16":
      return view.getUint16(0);
    case "int32":
      return view.getInt32(0);
    case "uint32":
      return view.getUint32(0);
    case "float32":
      return view.getFloat32(0);
    case "float64":
      return view.getFloat64(0);
  }
}

/** `raw × scale + offset`, rounded to 12 significant digits so 0.1-steps stay exact-looking. */
export function convert(raw: number, scale: number, offset: number): number {
  if (scale === 1 && offset === 0) return raw;
  const value = raw * scale + offset;
  return Number.isFinite(value) ? Number(value.toPrecision(12)) : value;
}

/** The value of `v` in a read of `data` starting at `start` (registers, or bits as 0/1). */
export function decodeValue(v: ValueSpec, data: ArrayLike<number>, start: number): number {
  const at = v.address - start;
  const width = valueWidth(v);
  if (at < 0 || at + width > data.length) {
    throw new RangeError(
      `${TABLE_NAME[v.table]} ${v.address} is outside the read of ${start}-${
        start + data.length - 1
      }`,
    );
  }
  if (v.table === "coil" || v.table === "discrete") {
    return convert(data[at] ? 1 : 0, v.scale, v.offset);
  }
  const words: number[] = [];
  for (let i = 0; i < width; i++) words.push(data[at + i]!);
  return convert(decodeWords(words, v.type, v.byte_order, v.word_order), v.scale, v.offset);
}

/** One Modbus read request covering several values. */
export interface ReadPlan {
  unit_id: number;
  table: Table;
  address: number;
  length: number;
  values: ValueSpec[];
}

/**
 * Groups `values` into the fewest reads: per unit id and table, values
 * sorted by address are merged while the read stays within `maxRead` (125
 * registers / 2000 bits by default) and the hole between two values is at
 * most `maxGap` registers (reading a hole costs bytes; a hole the device
 * does not map costs an exception, so the default is 0).
 */
export function planReads(
  values: readonly ValueSpec[],
  maxGap = 0,
  maxRead: Partial<Record<Table, number>> = {},
): ReadPlan[] {
  const byKey = new Map<string, ValueSpec[]>();
  for (const v of values) {
    const key = `${v.unit_id}/${v.table}`;
    const list = byKey.get(key);
    if (list) list.push(v);
    else byKey.set(key, [v]);
  }
  const plans: ReadPlan[] = [];
  for (const list of byKey.values()) {
    list.sort((a, b) => a.address - b.address || valueWidth(b) - valueWidth(a));
    let plan: ReadPlan | undefined;
    for (const v of list) {
      const limit = Math.min(maxRead[v.table] ?? MAX_READ[v.table], MAX_READ[v.table]);
      const end = v.address + valueWidth(v);
      if (plan) {
        const planEnd = plan.address + plan.length;
        const newEnd = Math.max(planEnd, end);
        if (v.address - planEnd <= maxGap && newEnd - plan.address <= limit) {
          plan.length = newEnd - plan.address;
          plan.values.push(v);
          continue;
        }
      }
      plan = {
        unit_id: v.unit_id,
        table: v.table,
        address: v.address,
        length: end - v.address,
        values: [v],
      };
      plans.push(plan);
    }
  }
  return plans;
}

/** "holding registers 10-13 of unit 1", for messages. */
export function describeRead(
  p: Pick<ReadPlan, "unit_id" | "table" | "address" | "length">,
): string {
  const name = TABLE_NAME[p.table];
  return p.length === 1
    ? `${name} ${p.address} of unit ${p.unit_id}`
    : `${name}s ${p.address}-${p.address + p.length - 1} of unit ${p.unit_id}`;
}

/** A Modbus exception answered by the device. */
export class ModbusException extends Error {
  override name = "ModbusException";
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** `Modbus exception 2 (illegal data address) reading holding register 7 of unit 1 ("pressure")`. */
export function exceptionMessage(code: number, p: ReadPlan): string {
  const what = EXCEPTION_NAMES[code] ?? "unknown exception";
  const metrics = p.values.map((v) => JSON.stringify(v.metric)).join(", ");
  return `Modbus exception ${code} (${what}) reading ${describeRead(p)} (${metrics})`;
}

import assert from "node:assert/strict";
import {
  decodeValue,
  decodeWords,
  describeRead,
  exceptionMessage,
  planReads,
  type ValueSpec,
} from "./_decode.ts";

/** A value with the schema's defaults, overridden by `v`. */
function spec(v: Partial<ValueSpec>): ValueSpec {
  return {
    metric: "m",
    unit_id: 1,
    table: "holding",
    address: 0,
    type: "uint16",
    byte_order: "big",
    word_order: "big",
    scale: 1,
    offset: 0,
    ...v,
  };
}

interface ValueCase {
  name: string;
  value: Partial<ValueSpec>;
  registers: number[];
  expected?: number | "NaN";
  error?: string;
}

interface PlanCase {
  name: string;
  max_gap: number;
  values: Partial<ValueSpec>[];
  reads: { unit_id: number; table: string; address: number; length: number; metrics: string[] }[];
}

const read = async <T>(file: string): Promise<{ cases: T[] }> =>
  JSON.parse(await Deno.readTextFile(new URL(`./testcases/${file}`, import.meta.url)));

for (const c of (await read<ValueCase>("values.json")).cases) {
  Deno.test(`modbus decoding golden case: ${c.name}`, () => {
    const v = spec(c.value);
    if (c.error !== undefined) {
      assert.throws(() => decodeValue(v, c.registers, 0), { message: c.error });
    } else if (c.expected === "NaN") {
      assert.ok(Number.isNaN(decodeValue(v, c.registers, 0)));
    } else {
      assert.equal(decodeValue(v, c.registers, 0), c.expected);
    }
  });
}

for (const c of (await read<PlanCase>("plans.json")).cases) {
  Deno.test(`modbus planning golden case: ${c.name}`, () => {
    const plans = planReads(c.values.map(spec), c.max_gap);
    assert.deepEqual(
      plans.map((p) => ({
        unit_id: p.unit_id,
        table: p.table,
        address: p.address,
        length: p.length,
        metrics: p.values.map((v) => v.metric),
      })),
      c.reads,
    );
  });
}

Deno.test("decodeValue() takes a value from the middle of a batched read", () => {
  const v = spec({ address: 12, type: "int32" });
  assert.equal(decodeValue(v, [0, 0, 0xffff, 0xfffe, 0], 10), -2);
});

Deno.test("decodeWords() refuses the wrong number of registers", () => {
  assert.throws(() => decodeWords([1, 2, 3], "float64", "big", "big"), {
    message: "A float64 needs 4 registers, got 3",
  });
});

Deno.test("exception messages name the code, the registers, the unit and the metrics", () => {
  const [plan] = planReads([spec({ metric: "pressure", address: 7 })]);
  assert.equal(
    exceptionMessage(2, plan!),
    'Modbus exception 2 (illegal data address) reading holding register 7 of unit 1 ("pressure")',
  );
  assert.equal(
    describeRead({ unit_id: 3, table: "input", address: 4, length: 2 }),
    "input registers 4-5 of unit 3",
  );
});

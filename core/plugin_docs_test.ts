import assert from "node:assert/strict";
import { describeFields, fieldsTable } from "./plugin_docs.ts";
import { duration, z } from "./mod.ts";

const schema = z.strictObject({
  name: z.string().describe("Name"),
  sinks: z.array(z.discriminatedUnion("type", [
    z.strictObject({
      type: z.literal("log").describe("Log it"),
      level: z.enum(["info", "warn"]).default("info").describe("Log level"),
    }),
    z.strictObject({
      type: z.literal("webhook").describe("POST it"),
      url: z.string().describe("Where"),
      timeout: duration().prefault("5s").describe("Longest wait"),
      level: z.enum(["info", "warn", "error"]).default("info").describe("Log level"),
    }),
    z.strictObject({
      type: z.literal("file").describe("Append it"),
      url: z.string().describe("Where"),
    }),
  ])).default([]).describe("Sinks"),
});

Deno.test("describeFields documents array items of a discriminated union, variant by variant", () => {
  const fields = describeFields(schema);
  const byPath = Object.fromEntries(fields.map((f) => [f.path, f]));
  assert.deepEqual(fields.map((f) => f.path), [
    "name",
    "sinks",
    "sinks[].type",
    "sinks[].level",
    "sinks[].url",
    "sinks[].timeout",
  ]);
  assert.equal(byPath["sinks[].type"]!.type, '"log" | "webhook" | "file"');
  assert.equal(
    byPath["sinks[].type"]!.description,
    "log: Log it; webhook: POST it; file: Append it",
  );
  // Shared by some variants: one row, every type it takes, and which variants have it.
  assert.equal(byPath["sinks[].level"]!.type, '"info" | "warn" | "error"');
  assert.equal(byPath["sinks[].level"]!.description, "(with type: log or webhook) Log level");
  assert.equal(byPath["sinks[].url"]!.description, "(with type: webhook or file) Where");
  assert.equal(byPath["sinks[].url"]!.required, true);
  assert.equal(byPath["sinks[].timeout"]!.type, "duration");
  assert.equal(byPath["sinks[].timeout"]!.default, "5s");
  assert.equal(byPath["sinks[].timeout"]!.description, "(with type: webhook) Longest wait");
  assert.match(fieldsTable(fields), /\| `sinks\[\]\.url` \| string \| \*\*required\*\* \|/);
});

Deno.test("describeFields lists a field every variant has without a variant note", () => {
  const fields = describeFields(
    z.strictObject({
      mode: z.discriminatedUnion("kind", [
        z.strictObject({ kind: z.literal("a"), size: z.int().describe("Size") }),
        z.strictObject({ kind: z.literal("b"), size: z.int().describe("Size") }),
      ]),
    }),
  );
  const size = fields.find((f) => f.path === "mode.size")!;
  assert.equal(size.description, "Size");
  assert.equal(size.type, "integer");
});

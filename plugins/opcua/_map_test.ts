import assert from "node:assert/strict";
import {
  metricName,
  nodeTable,
  numberOf,
  qualityOf,
  severity,
  timestampOf,
  toSample,
} from "./_map.ts";

const Good = 0x00000000;
const UncertainLastUsableValue = 0x40900000;
const BadSensorFailure = 0x808c0000;

const target = { node_id: "ns=1;s=Plant.Temp", device: "boiler", metric: "temp", unit: "C" };

Deno.test("status codes: Good leaves quality absent, Uncertain and Bad become bad", () => {
  assert.equal(severity(Good), "good");
  assert.equal(severity(UncertainLastUsableValue), "uncertain");
  assert.equal(severity(BadSensorFailure), "bad");
  assert.equal(qualityOf(Good), undefined);
  assert.equal(qualityOf(0x00a80000), undefined, "GoodOverload is still good");
  assert.equal(qualityOf(UncertainLastUsableValue), "bad");
  assert.equal(qualityOf(BadSensorFailure), "bad");
});

Deno.test("ts is the source timestamp, else the server's, else absent", () => {
  const source = new Date(Date.UTC(2020, 0, 1));
  const server = new Date(Date.UTC(2021, 0, 1));
  assert.equal(timestampOf({ sourceTimestamp: source, serverTimestamp: server }), +source);
  assert.equal(timestampOf({ sourceTimestamp: null, serverTimestamp: server }), +server);
  assert.equal(timestampOf({ sourceTimestamp: new Date(Number.NaN) }), undefined);
  assert.equal(timestampOf({ sourceTimestamp: new Date(Date.UTC(1601, 0, 1)) }), undefined);
  assert.equal(timestampOf({}), undefined);
});

Deno.test("numbers, booleans and 64-bit integers are values; strings and arrays are not", () => {
  assert.equal(numberOf(21.5), 21.5);
  assert.equal(numberOf(true), 1);
  assert.equal(numberOf(false), 0);
  assert.equal(numberOf(12n), 12);
  assert.equal(numberOf([1, 5]), 2 ** 32 + 5, "node-opcua's [high, low] Int64");
  assert.equal(numberOf([0, 0xffffffff]), 0xffffffff, "low word unsigned");
  assert.equal(numberOf("21.5"), undefined);
  assert.equal(numberOf([1, 2, 3]), undefined);
  assert.equal(numberOf(null), undefined);
  assert.equal(numberOf(Number.NaN), undefined);
});

Deno.test("a good data change becomes a sample with its unit and source timestamp", () => {
  const ts = Date.UTC(2020, 0, 1, 0, 0, 7);
  const mapped = toSample(target, {
    value: 7,
    status: Good,
    statusName: "Good",
    sourceTimestamp: new Date(ts),
    serverTimestamp: new Date(),
  });
  assert.deepEqual(mapped, {
    sample: { device: "boiler", metric: "temp", value: 7, unit: "C", ts },
  });
});

Deno.test("a bad value is kept with quality bad and its status name; a bad null is an error", () => {
  const mapped = toSample(target, {
    value: 3,
    status: BadSensorFailure,
    statusName: "BadSensorFailure",
  });
  assert.deepEqual(mapped, {
    sample: {
      device: "boiler",
      metric: "temp",
      value: 3,
      unit: "C",
      quality: "bad",
      tags: { opcua_status: "BadSensorFailure" },
    },
  });
  assert.deepEqual(
    toSample(target, { value: null, status: BadSensorFailure, statusName: "BadSensorFailure" }),
    { error: 'Node "ns=1;s=Plant.Temp" has no value, not a number (status BadSensorFailure)' },
  );
  assert.deepEqual(toSample(target, { value: "on", status: Good, statusName: "Good" }), {
    error: 'Node "ns=1;s=Plant.Temp" has a value of type string, not a number (status Good)',
  });
});

Deno.test("the node table fills in the device and refuses duplicates", () => {
  assert.deepEqual(
    nodeTable([
      { node_id: "ns=1;s=A", metric: "a" },
      { node_id: "ns=1;s=B", metric: "a", device: "other", unit: "bar" },
    ], "plant"),
    [
      { node_id: "ns=1;s=A", device: "plant", metric: "a" },
      { node_id: "ns=1;s=B", device: "other", metric: "a", unit: "bar" },
    ],
  );
  assert.throws(
    () =>
      nodeTable([{ node_id: "ns=1;s=A", metric: "a" }, { node_id: "ns=1;s=A", metric: "b" }], "p"),
    /Node "ns=1;s=A" is listed twice/,
  );
  assert.throws(
    () =>
      nodeTable([{ node_id: "ns=1;s=A", metric: "a" }, { node_id: "ns=1;s=B", metric: "a" }], "p"),
    /Nodes "ns=1;s=A" and "ns=1;s=B" both feed device "p" metric "a"/,
  );
});

Deno.test("browsed paths become snake-case metric names", () => {
  assert.equal(metricName(["Plant", "Boiler 1", "Temp"]), "plant_boiler_1_temp");
  assert.equal(metricName(["Line2", "MotorSpeed"]), "line2_motor_speed");
  assert.equal(metricName(["!!"]), "value");
});

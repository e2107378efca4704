import assert from "node:assert/strict";
import { SampleStamper } from "../sample.ts";
import { parseLine, parseLineProtocolBody } from "./_line_protocol.ts";

const OPTIONS = { device_tag: "device", metric: "field" } as const;
const NOW = 1_700_000_123_000;
/** A fresh edge per test; its stamper hands out seq 0, 1, … */
const edge = () => ({ now: NOW, stamper: new SampleStamper(() => 0) });

Deno.test("parseLine() reads measurement, tags, typed fields and the timestamp", () => {
  assert.deepEqual(
    parseLine('boiler,site=north,floor=2 temperature=71.5,count=3i,big=7u,on=t,name="x" 17'),
    {
      measurement: "boiler",
      tags: { site: "north", floor: "2" },
      fields: { temperature: 71.5, count: 3, big: 7, on: true, name: "x" },
      timestamp: 17n,
    },
  );
  assert.deepEqual(parseLine("m v=-1.5e3,w=.5,z=FALSE"), {
    measurement: "m",
    tags: {},
    fields: { v: -1500, w: 0.5, z: false },
  });
});

Deno.test("parseLine() honours escapes in names, tag values and strings", () => {
  assert.deepEqual(
    parseLine(String.raw`my\ meas\,x,tag\,key=val\ u\=e field\=x=1,s="a \"q\" \\ b, c=d" -5`),
    {
      measurement: "my meas,x",
      tags: { "tag,key": "val u=e" },
      fields: { "field=x": 1, s: 'a "q" \\ b, c=d' },
      timestamp: -5n,
    },
  );
});

Deno.test("parseLine() says why a line is malformed", () => {
  const reason = (line: string) => {
    try {
      parseLine(line);
      return "parsed";
    } catch (error) {
      return (error as Error).message;
    }
  };
  assert.equal(reason("m"), "Line has no fields");
  assert.equal(reason(",t=1 v=1"), "Line has no measurement");
  assert.equal(reason("m,t v=1"), 'Tag "t" has no value');
  assert.equal(reason("m,t= v=1"), 'Tag "t" has an empty value');
  assert.equal(reason("m v"), 'Field "v" has no value');
  assert.equal(reason("m v=abc"), 'Field value "abc" is not a number, boolean or string');
  assert.equal(reason('m v="open'), 'String field "v" is not closed');
  assert.equal(reason("m v=1 12x"), 'Timestamp "12x" is not an integer');
  assert.equal(reason("m v=1e999"), 'Field value "1e999" is not finite');
});

Deno.test("a line-protocol body becomes one sample per numeric field", () => {
  const body = [
    "# comment",
    'boiler,site=north temperature=71.5,pressure=2i,state="ok" 1700000000000000000',
    "",
    "modbus,device=press_1,host=plc1 temperature=20,running=true",
  ].join("\n");
  const parsed = parseLineProtocolBody(body, edge(), OPTIONS);
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.samples, [
    {
      device: "boiler",
      metric: "temperature",
      value: 71.5,
      ts: 1_700_000_000_000,
      tags: { site: "north" },
    },
    {
      device: "boiler",
      metric: "pressure",
      value: 2,
      ts: 1_700_000_000_000,
      tags: { site: "north" },
    },
    {
      device: "press_1",
      metric: "temperature",
      value: 20,
      ts: NOW,
      seq: 0,
      tags: { host: "plc1", measurement: "modbus" },
    },
    {
      device: "press_1",
      metric: "running",
      value: 1,
      ts: NOW,
      seq: 1,
      tags: { host: "plc1", measurement: "modbus" },
    },
  ]);
  assert.equal(parsed.skipped, 1, "the string field is not a sample");
});

Deno.test("line-protocol timestamps follow the precision; metrics may carry the measurement", () => {
  const at = (line: string, precision: "ns" | "us" | "ms" | "s") => {
    const parsed = parseLineProtocolBody(line, edge(), OPTIONS, precision);
    assert.ok(parsed.ok);
    return parsed.samples[0]!.ts;
  };
  assert.equal(at("m v=1 1700000000123456789", "ns"), 1_700_000_000_123.456);
  assert.equal(at("m v=1 1700000000123456", "us"), 1_700_000_000_123.456);
  assert.equal(at("m v=1 1700000000123", "ms"), 1_700_000_000_123);
  assert.equal(at("m v=1 1700000000", "s"), 1_700_000_000_000);
  const named = parseLineProtocolBody("cpu usage=5", edge(), {
    ...OPTIONS,
    metric: "measurement_field",
  });
  assert.ok(named.ok);
  assert.equal(named.samples[0]!.metric, "cpu_usage");
});

Deno.test("a line-protocol body with bad lines lists each by index and takes nothing", () => {
  const parsed = parseLineProtocolBody("m v=1\nm v=\n\nm,t v=2", edge(), OPTIONS);
  assert.deepEqual(parsed, {
    ok: false,
    invalid: [
      { index: 1, reason: 'Field value "" is not a number, boolean or string' },
      { index: 3, reason: 'Tag "t" has no value' },
    ],
  });
  assert.deepEqual(parseLineProtocolBody('m s="x"', edge(), OPTIONS), {
    ok: false,
    malformed: "Body holds no numeric fields",
  });
  assert.deepEqual(parseLineProtocolBody("# only\n", edge(), OPTIONS), {
    ok: false,
    malformed: "Body holds no samples",
  });
});

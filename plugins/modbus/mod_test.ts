import assert from "node:assert/strict";
import modbusSerial from "modbus-serial";
import { type DeviceIO, type SampleInput, systemClock } from "../../core/mod.ts";
import { testContext } from "../../core/testing.ts";
import modbus, { configSchema, planGroups } from "./mod.ts";

const issues = (input: unknown) =>
  configSchema.safeParse(input).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);

const TCP = { transport: "tcp", host: "127.0.0.1" };

Deno.test("modbus config has Modbus defaults: port 502, unit 1, holding uint16, big-endian", () => {
  const config = configSchema.parse({
    connection: TCP,
    groups: [{ values: [{ metric: "t", address: 3 }] }],
  });
  assert.deepEqual(config.connection, { transport: "tcp", host: "127.0.0.1", port: 502 });
  assert.equal(config.unit_id, 1);
  assert.equal(config.timeout, 1000);
  assert.equal(config.retries, 2);
  assert.equal(config.max_gap, 0);
  assert.equal(config.groups[0]!.interval, 1000);
  assert.deepEqual(config.groups[0]!.values[0], {
    metric: "t",
    table: "holding",
    address: 3,
    type: "uint16",
    byte_order: "big",
    word_order: "big",
    scale: 1,
    offset: 0,
  });
});

Deno.test("modbus config refuses unknown transports, bad addresses and empty groups", () => {
  assert.equal(
    issues({ connection: { transport: "udp" }, groups: [] })?.[0]?.startsWith("connection"),
    true,
  );
  assert.deepEqual(
    issues({ connection: TCP, groups: [{ values: [{ metric: "t", address: 70000 }] }] })
      ?.map((i) => i.split(":")[0]),
    ["groups.0.values.0.address"],
  );
  assert.deepEqual(
    issues({ connection: TCP, groups: [{ values: [] }] })?.map((i) => i.split(":")[0]),
    [
      "groups.0.values",
    ],
  );
  assert.deepEqual(
    issues({
      connection: { transport: "rtu", path: "ttyUSB0" },
      groups: [{ values: [{ metric: "t", address: 0 }] }],
    }),
    ["connection.path: Expected an absolute path such as /dev/ttyUSB0"],
  );
});

Deno.test("planGroups() takes each value's unit id from the value, else its group, else the device", () => {
  const config = configSchema.parse({
    connection: TCP,
    unit_id: 7,
    groups: [
      {
        name: "fast",
        interval: "100ms",
        unit_id: 3,
        values: [{ metric: "a", address: 0 }, { metric: "b", address: 1, unit_id: 4 }],
      },
      { values: [{ metric: "c", address: 0 }, { metric: "d", address: 1 }] },
    ],
  });
  const groups = planGroups(config);
  assert.deepEqual(groups.map((g) => [g.name, g.interval]), [["fast", 100], ["1", 1000]]);
  assert.deepEqual(groups[0]!.plans.map((p) => [p.unit_id, p.address, p.length]), [[3, 0, 1], [
    4,
    1,
    1,
  ]]);
  assert.deepEqual(groups[1]!.plans.map((p) => [p.unit_id, p.address, p.length]), [[7, 0, 2]]);
});

Deno.test("modbus device emits samples stamped with the read's time and numbered per metric", async () => {
  // CommonJS: the default import is the client class; the server hangs off it.
  const { ServerTCP } = modbusSerial as unknown as typeof import("modbus-serial");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const server = new ServerTCP({
    getHoldingRegister: (address: number) => address + 10,
    getInputRegister: () => 0,
    getCoil: () => false,
    getDiscreteInput: () => false,
  }, { host: "127.0.0.1", port, unitID: 255 });
  await new Promise<void>((resolve) => server.on("initialized", () => resolve()));
  const ctx = testContext({ name: "plc", clock: systemClock });
  const config = configSchema.parse({
    connection: { ...TCP, port },
    groups: [{
      interval: "10ms",
      values: [{ metric: "a", address: 0 }, { metric: "b", address: 1, unit: "V" }],
    }],
  });
  const device = await modbus.create(config, ctx);
  const abort = new AbortController();
  const emitted: SampleInput[] = [];
  const states: string[] = [];
  const io: DeviceIO = {
    emit(samples) {
      emitted.push(...samples);
      if (emitted.length >= 4) abort.abort();
    },
    up: () => states.at(-1) === "up" || states.push("up"),
    down: () => states.push("down"),
    readError: (error) => states.push(`error: ${error}`),
    signal: abort.signal,
  };
  const before = Date.now();
  try {
    await device.run(io);
  } finally {
    await device.close?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  assert.deepEqual(states, ["up"]);
  assert.deepEqual(
    emitted.slice(0, 4).map(({ metric, value, unit, seq }) => ({ metric, value, unit, seq })),
    [
      { metric: "a", value: 10, unit: undefined, seq: 0 },
      { metric: "b", value: 11, unit: "V", seq: 0 },
      { metric: "a", value: 10, unit: undefined, seq: 1 },
      { metric: "b", value: 11, unit: "V", seq: 1 },
    ],
  );
  for (const s of emitted) assert.ok(s.ts! >= before && s.ts! <= Date.now());
  assert.equal(emitted[0]!.ts, emitted[1]!.ts, "values of one read share its time");
});

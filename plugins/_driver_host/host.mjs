#!/usr/bin/env node
// TelemetryHub driver host: serial, Modbus RTU, I2C and SPI for the Deno runtime, which
// cannot run these native addons itself. Newline-delimited JSON on stdio; the
// protocol is documented in README.md. Native modules load lazily, per bus
// kind, so a host without them still answers `hello` and fake-bus devices.
//
// Usage: node host.mjs [--allow-fake-bus]
import { createInterface } from "node:readline";
import { devices, flush, HostError, load, send } from "./_output.mjs";
import { modbusRead, openModbus, openSerial, serialRequest, serialWrite } from "./_serial.mjs";
import { fakeI2c, fakeSpi, realI2c, realSpi } from "./_buses.mjs";

const FAKE_BUS_ALLOWED = process.argv.includes("--allow-fake-bus");
const VERSION = "0.1.0";

// -------------------------------------------------------------- dispatch

function fakeOrReal(req, fake, real) {
  if (req.fake === undefined) return real(req);
  if (!FAKE_BUS_ALLOWED) {
    throw new HostError(
      "Fake bus is disabled: it is for tests only",
      "refused",
    );
  }
  return fake(req.fake);
}

async function open(req) {
  if (typeof req.device !== "string") {
    throw new HostError("Missing device name");
  }
  if (devices.has(req.device)) {
    throw new HostError(`Device "${req.device}" is already open`);
  }
  let device;
  if (req.kind === "serial") {
    device = await openSerial(req);
  } else if (req.kind === "i2c") {
    device = { kind: "i2c", ...(await fakeOrReal(req, fakeI2c, realI2c)) };
  } else if (req.kind === "modbus") {
    device = await openModbus(req);
  } else if (req.kind === "spi") {
    device = { kind: "spi", ...(await fakeOrReal(req, fakeSpi, realSpi)) };
  } else {
    throw new HostError(`Unknown bus kind ${JSON.stringify(req.kind)}`);
  }
  devices.set(req.device, device);
  return {};
}

function deviceOf(req, kind) {
  const device = devices.get(req.device);
  if (!device) {
    throw new HostError(`Device "${req.device}" is not open`, "not_open");
  }
  if (kind && device.kind !== kind) {
    throw new HostError(`Device "${req.device}" is not ${kind}`);
  }
  return device;
}

const OPS = {
  hello: () => ({
    version: VERSION,
    node: process.versions.node,
    pid: process.pid,
    fake_bus: FAKE_BUS_ALLOWED,
  }),
  /** Loads the native modules, so a broken build shows up in tests. */
  probe: async (req) => {
    const loaded = {};
    for (const name of req.modules ?? ["serialport", "i2c-bus", "spi-device"]) {
      const m = await load(name);
      loaded[name] = Object.keys(m.default ?? m).length > 0;
    }
    return { loaded };
  },
  open,
  close: async (req) => {
    const device = devices.get(req.device);
    if (!device) return {};
    devices.delete(req.device);
    await device.close();
    return {};
  },
  write: async (req) => {
    const device = deviceOf(req);
    if (device.kind === "serial") await serialWrite(device, req.data);
    else if (device.kind === "i2c") await device.write(req.register, req.bytes);
    else throw new HostError(`Device "${req.device}" does not take writes`);
    return {};
  },
  request: (req) => serialRequest(deviceOf(req, "serial"), req.data, req.timeout ?? 1000),
  read: async (req) => {
    const device = deviceOf(req, "i2c");
    const reads = [];
    let ts = 0;
    for (const { register, length } of req.blocks) {
      reads.push(await device.read(register, length));
      ts = Date.now();
    }
    return { ts, reads };
  },
  modbus_read: (req) => modbusRead(deviceOf(req, "modbus"), req),
  transfer: async (req) => {
    const device = deviceOf(req, "spi");
    const replies = [];
    let ts = 0;
    for (const frame of req.frames) {
      replies.push(await device.transfer(frame));
      ts = Date.now();
    }
    return { ts, replies };
  },
};

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    send({
      id: null,
      ok: false,
      error: "Request is not JSON",
      code: "bad_request",
    });
    return;
  }
  const op = OPS[req.op];
  try {
    if (!op) {
      throw new HostError(
        `Unknown op ${JSON.stringify(req.op)}`,
        "bad_request",
      );
    }
    send({ id: req.id, ok: true, ...(await op(req)) });
  } catch (error) {
    send({
      id: req.id,
      ok: false,
      error: error.message,
      code: error.code ?? "error",
    });
  }
}

const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on("line", (line) => {
  if (line.trim()) void handle(line);
});
// The Deno side went away: release every device and leave.
input.on("close", async () => {
  for (const device of devices.values()) await device.close().catch(() => {});
  flush();
  process.exit(0);
});

#!/usr/bin/env node
// TelemetryHub driver host: serial, Modbus RTU, I2C and SPI for the Deno runtime, which
// cannot run these native addons itself. Newline-delimited JSON on stdio; the
// protocol is documented in README.md. Native modules load lazily, per bus
// kind, so a host without them still answers `hello` and fake-bus devices.
//
// Usage: node host.mjs [--allow-fake-bus]
import { createInterface } from "node:readline";
import { realpathSync } from "node:fs";
import { dirname, resolve } from "node:path";

const FAKE_BUS_ALLOWED = process.argv.includes("--allow-fake-bus");
const VERSION = "0.1.0";

/** @type {Map<string, {kind: string, close: () => Promise<void>, [k: string]: any}>} */
const devices = new Map();

// ------------------------------------------------------------------ output

let pending = [];
let flushScheduled = false;

/** Queues one message; messages written in the same tick go out as one write. */
function send(message) {
  pending.push(JSON.stringify(message));
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

function flush() {
  flushScheduled = false;
  if (pending.length === 0) return;
  const text = pending.join("\n") + "\n";
  pending = [];
  process.stdout.write(text);
}

function emit(event, device, fields = {}) {
  send({ event, device, ts: Date.now(), ...fields });
}

class HostError extends Error {
  constructor(message, code = "error") {
    super(message);
    this.code = code;
  }
}

// ---------------------------------------------------------------- modules

/** Imports a native package, mapping "not installed" to code `missing_packages`. */
async function load(name) {
  try {
    return await import(name);
  } catch (error) {
    if (
      error &&
      (error.code === "ERR_MODULE_NOT_FOUND" ||
        error.code === "MODULE_NOT_FOUND")
    ) {
      throw new HostError(
        `Package "${name}" is not installed`,
        "missing_packages",
      );
    }
    throw new HostError(
      `Package "${name}" failed to load: ${error.message}`,
      "load_failed",
    );
  }
}

// ----------------------------------------------------------------- serial

function checkSerialPath(path, allowed) {
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new HostError(
      `Serial path ${JSON.stringify(path)} is not absolute`,
      "refused",
    );
  }
  const normal = resolve(path);
  if (normal.startsWith("/dev/")) return;
  const list = Array.isArray(allowed) ? allowed.map((p) => resolve(String(p))) : [];
  if (list.includes(normal)) return;
  // A directory in the list allows the links inside it (socat pty links in a temp dir).
  if (list.includes(dirname(normal))) return;
  throw new HostError(
    `Serial path ${JSON.stringify(path)} is outside /dev/ and not in allowed_paths`,
    "refused",
  );
}

async function openSerial(req) {
  checkSerialPath(req.path, req.allowed_paths);
  try {
    realpathSync(req.path);
  } catch {
    throw new HostError(
      `Serial port ${JSON.stringify(req.path)} does not exist`,
      "not_found",
    );
  }
  const { SerialPort } = await load("serialport");
  const port = new SerialPort({
    path: req.path,
    baudRate: req.baud_rate ?? 9600,
    dataBits: req.data_bits ?? 8,
    parity: req.parity ?? "none",
    stopBits: req.stop_bits ?? 1,
    autoOpen: false,
  });
  await new Promise((ok, fail) =>
    port.open((error) =>
      error
        ? fail(
          new HostError(
            `Cannot open serial port ${JSON.stringify(req.path)}: ${error.message}`,
          ),
        )
        : ok()
    )
  );
  const device = {
    kind: "serial",
    port,
    rest: "",
    /** Resolvers of `request` ops waiting for the next line. */
    waiting: [],
    closing: false,
    async close() {
      device.closing = true;
      if (port.isOpen) await new Promise((ok) => port.close(() => ok()));
    },
  };
  port.on("data", (chunk) => {
    const ts = Date.now(); // taken at read time, carried with every line of the chunk
    const parts = (device.rest + chunk.toString("utf8")).split("\n");
    device.rest = parts.pop() ?? "";
    const lines = [];
    for (let line of parts) {
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line.length === 0) continue;
      const waiter = device.waiting.shift();
      if (waiter) waiter(line, ts);
      else lines.push(line);
    }
    if (lines.length > 0) {
      send({ event: "data", device: req.device, ts, lines });
    }
  });
  port.on(
    "error",
    (error) => emit("error", req.device, { error: error.message }),
  );
  port.on("close", (error) => {
    if (devices.get(req.device) !== device) return;
    devices.delete(req.device);
    const message = device.closing ? undefined : (error?.message ?? "Port closed");
    emit(
      "closed",
      req.device,
      message
        ? {
          error: `Serial port ${JSON.stringify(req.path)} closed: ${message}`,
        }
        : {},
    );
  });
  return device;
}

async function serialWrite(device, data) {
  await new Promise((ok, fail) =>
    device.port.write(
      Buffer.from(data, "utf8"),
      (error) => error ? fail(error) : ok(),
    )
  );
}

/** Writes `data`, then resolves with the next line read, or fails after `timeout` ms. */
async function serialRequest(device, data, timeout) {
  const reply = new Promise((ok, fail) => {
    const waiter = (line, ts) => {
      clearTimeout(timer);
      ok({ line, ts });
    };
    const timer = setTimeout(() => {
      const i = device.waiting.indexOf(waiter);
      if (i >= 0) device.waiting.splice(i, 1);
      fail(new HostError(`No reply within ${timeout} ms`, "timeout"));
    }, timeout);
    device.waiting.push(waiter);
  });
  await serialWrite(device, data);
  return await reply;
}

// -------------------------------------------------------------------- I2C

function registerNumber(key) {
  const n = Number(key);
  if (!Number.isInteger(n) || n < 0 || n > 255) {
    throw new HostError(`Bad register ${JSON.stringify(key)}`);
  }
  return n;
}

/** A scripted I2C device: 256 registers filled from `fake.registers`, writes stored. */
function fakeI2c(fake) {
  const memory = new Uint8Array(256);
  for (const [key, bytes] of Object.entries(fake.registers ?? {})) {
    memory.set(bytes.map((b) => b & 0xff), registerNumber(key));
  }
  return {
    read: (register, length) => Promise.resolve([...memory.subarray(register, register + length)]),
    write: (register, bytes) => {
      memory.set(bytes, register);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

async function realI2c(req) {
  const i2c = await load("i2c-bus");
  const open = i2c.default?.openPromisified ?? i2c.openPromisified;
  let bus;
  try {
    bus = await open(req.bus);
  } catch (error) {
    throw new HostError(`Cannot open I2C bus ${req.bus}: ${error.message}`);
  }
  const address = req.address;
  return {
    async read(register, length) {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await bus.readI2cBlock(
        address,
        register,
        length,
        buffer,
      );
      if (bytesRead !== length) {
        throw new HostError(`Read ${bytesRead} of ${length} bytes`);
      }
      return [...buffer];
    },
    async write(register, bytes) {
      await bus.writeI2cBlock(
        address,
        register,
        bytes.length,
        Buffer.from(bytes),
      );
    },
    close: () => bus.close(),
  };
}

// ----------------------------------------------------------------- Modbus

/** Reads of each Modbus table by function code, as named by modbus-serial. */
const MODBUS_READS = {
  1: "readCoils",
  2: "readDiscreteInputs",
  3: "readHoldingRegisters",
  4: "readInputRegisters",
};

/** A Modbus RTU master on a serial line (npm `modbus-serial` over `serialport`). */
async function openModbus(req) {
  checkSerialPath(req.path, req.allowed_paths);
  try {
    realpathSync(req.path);
  } catch {
    throw new HostError(
      `Serial port ${JSON.stringify(req.path)} does not exist`,
      "not_found",
    );
  }
  const ModbusRTU = (await load("modbus-serial")).default;
  const client = new ModbusRTU();
  try {
    await client.connectRTUBuffered(req.path, {
      baudRate: req.baud_rate ?? 9600,
      dataBits: req.data_bits ?? 8,
      parity: req.parity ?? "none",
      stopBits: req.stop_bits ?? 1,
    });
  } catch (error) {
    throw new HostError(
      `Cannot open serial port ${JSON.stringify(req.path)}: ${error.message}`,
    );
  }
  const device = {
    kind: "modbus",
    client,
    closing: false,
    close: async () => {
      device.closing = true;
      if (client.isOpen) await new Promise((ok) => client.close(() => ok()));
    },
  };
  client._port.on("close", () => {
    if (devices.get(req.device) !== device) return;
    devices.delete(req.device);
    emit(
      "closed",
      req.device,
      device.closing ? {} : { error: `Serial port ${JSON.stringify(req.path)} closed` },
    );
  });
  return device;
}

/**
 * One read: `{ts, data}` (registers, or bits as 0/1), or `{ts, exception}`
 * when the device answered with a Modbus exception (an answer, not a failure).
 */
async function modbusRead(device, req) {
  const method = MODBUS_READS[req.fc];
  if (!method) throw new HostError(`Bad function code ${JSON.stringify(req.fc)}`, "bad_request");
  const client = device.client;
  client.setID(req.unit_id);
  client.setTimeout(req.timeout ?? 1000);
  try {
    const reply = await client[method](req.address, req.length);
    const ts = Date.now();
    const data = req.fc <= 2
      ? reply.data.slice(0, req.length).map((bit) => (bit ? 1 : 0))
      : reply.data;
    return { ts, data };
  } catch (error) {
    if (typeof error?.modbusCode === "number") {
      return { ts: Date.now(), exception: error.modbusCode };
    }
    if (error?.errno === "ETIMEDOUT") {
      throw new HostError(`No reply within ${req.timeout} ms`, "timeout");
    }
    throw new HostError(error?.message ?? String(error));
  }
}

// -------------------------------------------------------------------- SPI

function hex(bytes) {
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** A scripted SPI device: the reply to a frame is `fake.replies[hex of frame]`, else `fake.default`. */
function fakeSpi(fake) {
  const replies = new Map(
    Object.entries(fake.replies ?? {}).map((
      [k, v],
    ) => [k.toLowerCase().trim(), v]),
  );
  return {
    transfer(bytes) {
      const reply = replies.get(hex(bytes)) ?? fake.default;
      if (!reply) {
        throw new HostError(
          `Fake SPI bus has no reply for frame "${hex(bytes)}"`,
        );
      }
      return Promise.resolve(bytes.map((_, i) => (reply[i] ?? 0) & 0xff));
    },
    close: () => Promise.resolve(),
  };
}

async function realSpi(req) {
  const spi = await load("spi-device");
  const openDevice = spi.default?.open ?? spi.open;
  const options = {
    mode: req.mode ?? 0,
    maxSpeedHz: req.max_speed_hz ?? 1_000_000,
  };
  const device = await new Promise((ok, fail) => {
    const d = openDevice(
      req.bus,
      req.chip_select,
      options,
      (error) =>
        error
          ? fail(
            new HostError(
              `Cannot open SPI device ${req.bus}.${req.chip_select}: ${error.message}`,
            ),
          )
          : ok(d),
    );
  });
  return {
    transfer(bytes) {
      const message = {
        sendBuffer: Buffer.from(bytes),
        receiveBuffer: Buffer.alloc(bytes.length),
        byteLength: bytes.length,
        speedHz: options.maxSpeedHz,
      };
      return new Promise((ok, fail) =>
        device.transfer(
          [message],
          (error, [m]) => error ? fail(error) : ok([...m.receiveBuffer]),
        )
      );
    },
    close: () => new Promise((ok) => device.close(() => ok())),
  };
}

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

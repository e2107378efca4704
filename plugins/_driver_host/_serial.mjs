// Driver host: serial ports and Modbus RTU masters on them.
import { realpathSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { devices, emit, HostError, load, send } from "./_output.mjs";

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

/** Refuses a serial path outside /dev/ and allowed_paths, or one that does not exist. */
function checkSerialPort(path, allowedPaths) {
  checkSerialPath(path, allowedPaths);
  try {
    realpathSync(path);
  } catch {
    throw new HostError(
      `Serial port ${JSON.stringify(path)} does not exist`,
      "not_found",
    );
  }
}

export async function openSerial(req) {
  checkSerialPort(req.path, req.allowed_paths);
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

export async function serialWrite(device, data) {
  await new Promise((ok, fail) =>
    device.port.write(
      Buffer.from(data, "utf8"),
      (error) => error ? fail(error) : ok(),
    )
  );
}

/** Writes `data`, then resolves with the next line read, or fails after `timeout` ms. */
export async function serialRequest(device, data, timeout) {
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

// ----------------------------------------------------------------- Modbus

/** Reads of each Modbus table by function code, as named by modbus-serial. */
const MODBUS_READS = {
  1: "readCoils",
  2: "readDiscreteInputs",
  3: "readHoldingRegisters",
  4: "readInputRegisters",
};

/** A Modbus RTU master on a serial line (npm `modbus-serial` over `serialport`). */
export async function openModbus(req) {
  checkSerialPort(req.path, req.allowed_paths);
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
export async function modbusRead(device, req) {
  const method = MODBUS_READS[req.fc];
  if (!method) {
    throw new HostError(
      `Bad function code ${JSON.stringify(req.fc)}`,
      "bad_request",
    );
  }
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

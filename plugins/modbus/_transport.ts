/**
 * Modbus connections: TCP straight from Deno (npm `modbus-serial` works
 * under Deno's Node compatibility), RTU through the Node.js driver host
 * (`serialport` reads fail under Deno). Both answer reads the same way.
 *
 * @module
 */
import type modbusSerial from "modbus-serial";
import { driverHost, type HostDevice } from "../_driver_host/mod.ts";
import { FUNCTION_CODE, type Table } from "./_decode.ts";

/** What a read brought back: registers (or bits as 0/1), or the device's exception code. */
export type ReadReply =
  | { ts: number; data: ArrayLike<number>; exception?: undefined }
  | { ts: number; exception: number; data?: undefined };

/** One read request. */
export interface ReadRequest {
  unit_id: number;
  table: Table;
  address: number;
  length: number;
  timeout: number;
}

/** An open connection. */
export interface Connection {
  /** Reads; rejects on timeout or a broken connection, resolves with an exception answer. */
  read(request: ReadRequest): Promise<ReadReply>;
  /** Resolves with the reason once the connection is lost. */
  readonly closed: Promise<Error>;
  close(): Promise<void>;
}

/** The connection is gone: the device must connect again. */
export class ConnectionLost extends Error {
  override name = "ConnectionLost";
}

/** A read that got no answer in time. */
export class ModbusTimeout extends Error {
  override name = "ModbusTimeout";
}

type ModbusClientClass = typeof modbusSerial.default;
let clientClass: Promise<ModbusClientClass> | undefined;

/**
 * The client class, loaded on first use only: modbus-serial brings serialport's native
 * bindings, and merely loading them makes Deno ask for FFI access, which every process
 * without a Modbus device must not do (a terminal would show a permission prompt).
 */
function modbusClient(): Promise<ModbusClientClass> {
  // CommonJS: the default import is the client class itself; the bundled types describe a namespace.
  clientClass ??= import("modbus-serial").then((m) => m.default as unknown as ModbusClientClass);
  return clientClass;
}

const READS = {
  coil: "readCoils",
  discrete: "readDiscreteInputs",
  holding: "readHoldingRegisters",
  input: "readInputRegisters",
} as const;

/** Connects to a Modbus TCP server, giving up after `timeout` ms. */
export async function connectTcp(host: string, port: number, timeout: number): Promise<Connection> {
  const ModbusRTU = await modbusClient();
  const client = new ModbusRTU();
  const where = `${host}:${port}`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connect = client.connectTCP(host, { port });
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ModbusTimeout(
            `Cannot connect to Modbus server "${where}": no answer within ${timeout} ms`,
          ),
        ),
      timeout,
    );
  });
  try {
    await Promise.race([connect, timedOut]);
  } catch (error) {
    connect.catch(() => {});
    client.close(() => {});
    if (error instanceof ModbusTimeout) throw error;
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot connect to Modbus server "${where}": ${why}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
  let onClose!: (error: Error) => void;
  const closed = new Promise<Error>((resolve) => onClose = resolve);
  let closing = false;
  const lost = () => new ConnectionLost(`Connection to Modbus server "${where}" closed`);
  client.on("close", () => {
    if (!closing) onClose(lost());
  });
  client.on("error", (error: unknown) => {
    const why = error instanceof Error ? error.message : String(error);
    onClose(new ConnectionLost(`Connection to Modbus server "${where}" failed: ${why}`));
  });
  return {
    closed,
    async read({ unit_id, table, address, length, timeout }) {
      client.setID(unit_id);
      client.setTimeout(timeout);
      try {
        const reply = await client[READS[table]](address, length);
        const ts = Date.now();
        const data = reply.data;
        if (table === "coil" || table === "discrete") {
          const bits = new Uint8Array(length);
          for (let i = 0; i < length; i++) bits[i] = (data as boolean[])[i] ? 1 : 0;
          return { ts, data: bits };
        }
        return { ts, data: data as number[] };
      } catch (error) {
        const e = error as { modbusCode?: unknown; errno?: unknown; message?: unknown };
        if (typeof e?.modbusCode === "number") return { ts: Date.now(), exception: e.modbusCode };
        if (!client.isOpen) {
          const error = lost();
          onClose(error);
          throw error;
        }
        if (e?.errno === "ETIMEDOUT") throw new ModbusTimeout(`No reply within ${timeout} ms`);
        throw new Error(`Modbus read on "${where}" failed: ${String(e?.message ?? error)}`, {
          cause: error,
        });
      }
    },
    close() {
      closing = true;
      onClose(lost());
      // close() never calls back on a socket that is already gone.
      if (!client.isOpen) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeout);
        client.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/** A Modbus RTU master on the driver host, over the serial line of `open`. */
export async function openRtu(
  open: Record<string, unknown> & { device: string },
  signal: AbortSignal,
): Promise<Connection> {
  const device: HostDevice = await driverHost.open(
    { ...open, kind: "modbus" },
    () => {},
    signal,
  );
  return {
    closed: device.closed,
    async read({ unit_id, table, address, length, timeout }) {
      let reply;
      try {
        reply = await device.request("modbus_read", {
          unit_id,
          fc: FUNCTION_CODE[table],
          address,
          length,
          timeout,
        });
      } catch (error) {
        if ((error as { code?: unknown })?.code === "timeout") {
          throw new ModbusTimeout(`No reply within ${timeout} ms`);
        }
        throw error;
      }
      const ts = Number(reply.ts);
      if (typeof reply.exception === "number") return { ts, exception: reply.exception };
      return { ts, data: reply.data as number[] };
    },
    close: () => device.close(),
  };
}

// A Modbus server with a known register map, for the modbus tests and bench.
// TCP under Deno:  deno run --allow-net --allow-read --allow-env modbus_server.mjs tcp <port>
// RTU under Node:  node modbus_server.mjs rtu <serial path>   (needs `deno task drivers`)
// Prints "listening" once it serves. Any unit id is answered; unit 2's holding
// registers read 2000 + address. Holding registers 100-199 answer exception 2
// (illegal data address), 300 exception 4 (server device failure); from 200 on,
// a holding register reads its address (& 0xffff). Input register a reads
// 1000 + a, coil a is on when a is even, discrete input a when a % 3 == 0.

/** Holding registers 0-26 of unit 1 (see plugins/modbus/testcases/values.json). */
export const HOLDING = [
  0xfffe, // 0: int16 -2
  0xfffe, // 1: uint16 65534
  0xfffe,
  0x1dc0, // 2: int32 -123456, word order big
  0x1dc0,
  0xfffe, // 4: int32 -123456, word order little
  0xee6b,
  0x2800, // 6: uint32 4000000000, big/big
  0x6bee,
  0x0028, // 8: uint32 4000000000, byte order little
  0x42f6,
  0xe979, // 10: float32 123.456, ABCD
  0xe979,
  0x42f6, // 12: CDAB
  0xf642,
  0x79e9, // 14: BADC
  0x79e9,
  0xf642, // 16: DCBA
  0x4093,
  0x4a45,
  0x6d5c,
  0xfaad, // 18: float64 1234.5678, big/big
  0xadfa,
  0x5c6d,
  0x454a,
  0x9340, // 22: float64 1234.5678, little/little
  215, // 26: uint16 215 (scale 0.1, offset -10 → 11.5)
];

export const vector = {
  getHoldingRegister(address, unitID) {
    if (address >= 100 && address < 200) {
      throw { modbusErrorCode: 2, msg: `No register ${address}` };
    }
    if (address === 300) throw { modbusErrorCode: 4, msg: "Device failure" };
    if (unitID === 2) return 2000 + address;
    return address < HOLDING.length ? HOLDING[address] : address & 0xffff;
  },
  getInputRegister: (address) => (1000 + address) & 0xffff,
  getCoil: (address) => address % 2 === 0,
  getDiscreteInput: (address) => address % 3 === 0,
};

async function modbusSerial() {
  if (globalThis.Deno) return (await import("modbus-serial")).default;
  const { createRequire } = await import("node:module");
  const host = new URL("../../plugins/_driver_host/package.json", import.meta.url);
  return createRequire(host)("modbus-serial");
}

async function main(mode, where) {
  const ModbusRTU = await modbusSerial();
  const server = mode === "tcp"
    ? new ModbusRTU.ServerTCP(vector, { host: "127.0.0.1", port: Number(where), unitID: 255 })
    : new ModbusRTU.ServerSerial(vector, { path: where, baudRate: 115200, unitID: 255 });
  server.on("initialized", () => console.log("listening"));
  server.on("error", (error) => console.error(String(error?.message ?? error)));
  server.on("socketError", (error) => console.error(String(error?.message ?? error)));
}

const args = globalThis.Deno ? Deno.args : process.argv.slice(2);
if (args[0] === "tcp" || args[0] === "rtu") await main(args[0], args[1]);

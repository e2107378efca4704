// Driver host: I2C and SPI parts, real or (for tests) fake.
import { HostError, load } from "./_output.mjs";

// -------------------------------------------------------------------- I2C

function registerNumber(key) {
  const n = Number(key);
  if (!Number.isInteger(n) || n < 0 || n > 255) {
    throw new HostError(`Bad register ${JSON.stringify(key)}`);
  }
  return n;
}

/** A scripted I2C device: 256 registers filled from `fake.registers`, writes stored. */
export function fakeI2c(fake) {
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

export async function realI2c(req) {
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

// -------------------------------------------------------------------- SPI

function hex(bytes) {
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** A scripted SPI device: the reply to a frame is `fake.replies[hex of frame]`, else `fake.default`. */
export function fakeSpi(fake) {
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

export async function realSpi(req) {
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

/**
 * The Deno side of the driver host: spawns `node host.mjs` (one process for
 * the whole Deno process, shared by every serial, I2C and SPI device and
 * kept while any of them exists), talks newline-delimited JSON over stdio,
 * and starts the host again with exponential backoff after it dies. Devices
 * of a dead host see their handle close with an error; their `run()` throws,
 * the runtime marks them down and runs them again, which opens them on the
 * new host.
 *
 * @module
 */
import {
  backoffDelay,
  type Clock,
  type DeviceInstance,
  type DeviceIO,
  type Logger,
  type PluginContext,
  type RetryPolicy,
  type Sample,
  type SampleInput,
  seededRandom,
  sleepUnlessAborted,
  systemClock,
} from "../../core/mod.ts";
import {
  check,
  DriverHostError,
  type HostEvent,
  HostProcess,
  type HostReply,
  type Listener,
  MISSING_PACKAGES_MESSAGE,
} from "./_process.ts";

export { DriverHostError, type HostEvent, type HostReply, type Listener, MISSING_PACKAGES_MESSAGE };

/** The native packages the host loads, by bus kind. */
export const HOST_PACKAGES = {
  serial: "serialport",
  i2c: "i2c-bus",
  spi: "spi-device",
  modbus: "modbus-serial",
} as const;

/** A bus kind of the host. */
export type BusKind = keyof typeof HOST_PACKAGES;

/** The folder of `host.mjs` and its `node_modules`. */
export const HOST_DIR: string = decodeURIComponent(
  new URL(".", import.meta.url).pathname,
);
/** The host program. */
export const HOST_SCRIPT: string = `${HOST_DIR}host.mjs`;

/** Backoff between host restarts. */
export const HOST_RESTART_POLICY: RetryPolicy = {
  max_attempts: Number.POSITIVE_INFINITY,
  delay: 250,
  max: 10_000,
  jitter: 0.2,
};
/** A host that lived this long starts its restart backoff over. */
const STABLE_MS = 10_000;

/**
 * Whether the host's packages are installed in `dir` (the host's folder by
 * default): checks `node_modules`, does not load them.
 */
export async function hostPackagesInstalled(
  kinds: readonly BusKind[] = ["serial", "i2c", "spi", "modbus"],
  dir: string = HOST_DIR,
): Promise<boolean> {
  for (const kind of kinds) {
    try {
      await Deno.stat(
        `${dir}/node_modules/${HOST_PACKAGES[kind]}/package.json`,
      );
    } catch {
      return false;
    }
  }
  return true;
}

/** Throws the setup error when the package of `kind` is missing; called from `create()`. */
export async function requireHostPackages(kind: BusKind): Promise<void> {
  if (!await hostPackagesInstalled([kind])) {
    throw new Error(MISSING_PACKAGES_MESSAGE);
  }
}

let fakeBusEnabled = false;

/**
 * Lets devices use a scripted fake bus (`fake_bus` in their config). For
 * tests: a host started after this call accepts fake buses.
 */
export function enableFakeBus(): void {
  fakeBusEnabled = true;
}

/** An open device on the host. */
export interface HostDevice {
  readonly name: string;
  /** Sends a request about this device and waits for the reply. */
  request(op: string, params?: Record<string, unknown>): Promise<HostReply>;
  /** Resolves with the reason once the device is closed by the host or the host dies. */
  readonly closed: Promise<Error>;
  close(): Promise<void>;
}

/**
 * The process-wide driver host. Devices `acquire()` it in `create()` and
 * `release()` it in `close()`; the host runs while anyone holds it.
 */
class DriverHost {
  #refs = 0;
  #process: HostProcess | undefined;
  #starting: Promise<HostProcess> | undefined;
  #crashes = 0;
  #random = seededRandom(1);
  #logger: Logger | undefined;

  acquire(logger: Logger): void {
    this.#refs++;
    this.#logger ??= logger;
  }

  async release(): Promise<void> {
    this.#refs = Math.max(0, this.#refs - 1);
    if (this.#refs > 0) return;
    const process = this.#process;
    this.#process = undefined;
    this.#starting = undefined;
    this.#crashes = 0;
    await process?.stop();
  }

  /** Pid of the running host, if any (tests kill it). */
  get pid(): number | undefined {
    return this.#process?.alive ? this.#process.pid : undefined;
  }

  /** The running host, starting it (after the restart backoff, if it died) when needed. */
  async process(signal?: AbortSignal): Promise<HostProcess> {
    if (this.#process?.alive) return this.#process;
    this.#starting ??= this.#start(signal).finally(() => {
      this.#starting = undefined;
    });
    return await this.#starting;
  }

  async #start(signal?: AbortSignal): Promise<HostProcess> {
    const previous = this.#process;
    if (previous && !previous.alive) {
      const lived = previous.diedAt - previous.startedAt;
      this.#crashes = lived > STABLE_MS ? 1 : this.#crashes + 1;
      const delay = backoffDelay(HOST_RESTART_POLICY, this.#crashes, this.#random);
      const wait = previous.diedAt + delay - Date.now();
      const never = new AbortController().signal;
      if (wait > 0 && !await sleepUnlessAborted(systemClock, wait, signal ?? never)) {
        throw new Error("Aborted while waiting to restart the driver host");
      }
      this.#logger?.info("Driver host restarting", { crashes: this.#crashes });
    }
    const logger = this.#logger;
    if (!logger) throw new Error("Driver host used without acquire()");
    const process = new HostProcess(HOST_SCRIPT, fakeBusEnabled, logger);
    this.#process = process;
    check(await process.request("hello"), "Driver host did not start");
    return process;
  }

  /** Opens a device on the host; `listener` gets its data events. */
  async open(
    spec: Record<string, unknown> & { device: string; kind: BusKind },
    listener: Listener,
    signal?: AbortSignal,
  ): Promise<HostDevice> {
    const process = await this.process(signal);
    const name = spec.device;
    let onClose!: (error: Error) => void;
    const closed = new Promise<Error>((resolve) => onClose = resolve);
    process.listen(name, listener, onClose);
    try {
      check(
        await process.request("open", spec),
        `Cannot open ${spec.kind} device "${name}"`,
      );
    } catch (error) {
      process.unlisten(name);
      throw error;
    }
    return {
      name,
      closed,
      request: async (op, params = {}) =>
        check(
          await process.request(op, { device: name, ...params }),
          `Device "${name}" ${op} failed`,
        ),
      close: async () => {
        process.unlisten(name);
        onClose(new Error(`Device "${name}" closed`));
        if (process.alive) {
          await process.request("close", { device: name }).catch(() => {});
        }
      },
    };
  }
}

/** The driver host of this Deno process. */
export const driverHost: DriverHost = new DriverHost();

/**
 * Waits until `signal` aborts (resolves) or the host closes `device`
 * (throws the reason, so the runtime marks the device down and reopens it
 * with backoff).
 */
export async function untilClosedOrAborted(
  device: HostDevice,
  signal: AbortSignal,
): Promise<void> {
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    if (signal.aborted) return resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const reason = await Promise.race([device.closed, aborted]);
    if (reason && !signal.aborted) throw reason;
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

/**
 * Runs `poll` every `interval` until `signal` aborts or the host closes
 * `device` (then throws the reason). A failed poll is reported with `onError`
 * and polling goes on.
 */
export async function pollUntilClosed(
  device: HostDevice,
  signal: AbortSignal,
  interval: number,
  poll: () => Promise<void>,
  onError: (error: unknown) => void,
  clock: Clock = systemClock,
): Promise<void> {
  let closedReason: Error | undefined;
  void device.closed.then((reason) => closedReason = reason);
  while (!signal.aborted) {
    const started = clock.now();
    try {
      await poll();
    } catch (error) {
      if (closedReason) break;
      onError(error);
    }
    if (closedReason) break;
    const wait = Math.max(0, interval - (clock.now() - started));
    await Promise.race([
      sleepUnlessAborted(clock, wait, signal),
      device.closed,
    ]);
    if (closedReason) break;
  }
  if (closedReason && !signal.aborted) throw closedReason;
}

/**
 * Numbers samples per metric (`seq`), keeping the count across reconnects so
 * that consumers see gaps. Samples that carry a `seq` keep it.
 */
export function sequencer(): <S extends SampleInput>(sample: S) => S {
  const seqs = new Map<string, number>();
  return (sample) => {
    if (sample.seq !== undefined) return sample;
    const seq = seqs.get(sample.metric) ?? 0;
    seqs.set(sample.metric, seq + 1);
    sample.seq = seq;
    return sample;
  };
}

/** A decoded value of a bus read. */
export interface Reading {
  metric: string;
  value: number;
  unit?: string | undefined;
}

/** Samples of readings taken at `ts`, numbered by `stamp`. */
export function readingSamples(
  device: string,
  ts: number,
  readings: readonly Reading[],
  stamp: (sample: Sample) => Sample,
): Sample[] {
  return readings.map(({ metric, value, unit }) =>
    stamp(
      unit === undefined ? { device, metric, value, ts } : { device, metric, value, unit, ts },
    )
  );
}

/** What `open` sends: the device name, its bus kind and the bus fields (see README). */
export type OpenSpec = Record<string, unknown> & { device: string; kind: BusKind };

/**
 * A device instance on the driver host: holds the host from `create()` to
 * `close()`, and per `run()` opens the device, runs `session` and closes it.
 * `listen` gives the handler of the device's data events.
 */
export function hostDevice(
  ctx: PluginContext,
  open: OpenSpec,
  session: (device: HostDevice, io: DeviceIO) => Promise<void>,
  listen: (io: DeviceIO) => Listener = () => () => {},
): DeviceInstance {
  driverHost.acquire(ctx.logger);
  return {
    async run(io) {
      const device = await driverHost.open(open, listen(io), io.signal);
      try {
        await session(device, io);
      } finally {
        await device.close();
      }
    },
    close: () => driverHost.release(),
  };
}

/** One read of a polled part: host timestamp and decoded values. */
export type PollRead = () => Promise<{ ts: number; readings: Reading[] }>;

/**
 * A device polled every `interval` on the driver host (I2C, SPI). `setup`
 * runs after each open (check the part, read its calibration) and returns
 * the read. A failed read marks the device down; the next good one brings
 * it back up.
 */
export function pollingHostDevice(
  ctx: PluginContext,
  open: OpenSpec,
  interval: number,
  setup: (device: HostDevice, signal: AbortSignal) => Promise<PollRead> | PollRead,
): DeviceInstance {
  const stamp = sequencer();
  return hostDevice(ctx, open, async (device, io) => {
    const read = await setup(device, io.signal);
    io.up();
    await pollUntilClosed(
      device,
      io.signal,
      interval,
      async () => {
        const { ts, readings } = await read();
        await io.emit(readingSamples(ctx.name, ts, readings, stamp));
      },
      (error) => io.down(error),
      ctx.clock,
    );
  });
}

/**
 * The `modbus` device: polls holding and input registers, coils and
 * discrete inputs of Modbus TCP servers and RTU slaves, in polling groups
 * batched into as few requests as the register layout allows.
 *
 * @module
 */
import {
  defineDevice,
  type DeviceInstance,
  type DeviceIO,
  type SampleInput,
  sleepUnlessAborted,
} from "../../core/mod.ts";
import { driverHost, requireHostPackages, sequencer } from "../_driver_host/mod.ts";
import { configSchema, type ModbusConfig } from "./_config.ts";
import {
  decodeValue,
  describeRead,
  exceptionMessage,
  ModbusException,
  planReads,
  type ReadPlan,
  type ValueSpec,
} from "./_decode.ts";
import {
  type Connection,
  ConnectionLost,
  connectTcp,
  ModbusTimeout,
  openRtu,
} from "./_transport.ts";

export { configSchema, type ModbusConfig } from "./_config.ts";
export { decodeWords, planReads, type ReadPlan, type ValueSpec } from "./_decode.ts";

/** A polling group, planned. */
interface Group {
  name: string;
  interval: number;
  plans: ReadPlan[];
}

/** The groups of `config` with every value's unit id resolved and its reads planned. */
export function planGroups(config: ModbusConfig): Group[] {
  return config.groups.map((g, i) => {
    const values: ValueSpec[] = g.values.map((v) => ({
      ...v,
      unit_id: v.unit_id ?? g.unit_id ?? config.unit_id,
    }));
    return {
      name: g.name ?? String(i),
      interval: g.interval,
      plans: planReads(values, config.max_gap),
    };
  });
}

/** Runs `fn`s one at a time: a Modbus line carries one transaction at a time. */
function serializer(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };
}

export default defineDevice({
  name: "modbus",
  summary: "Modbus TCP and RTU: registers, coils and discrete inputs polled in batched groups",
  version: "0.1.0",
  description: "Polls PLCs and gateways over Modbus TCP (from Deno) or RTU (serial line, through " +
    "the Node.js driver host: `deno task drivers`). Exception answers count as read errors " +
    "naming the register; reads that time out after the retries mark the device down.",
  config: configSchema,
  async create(config, ctx) {
    const connection = config.connection;
    const groups = planGroups(config);
    const stamp = sequencer();
    const rtu = connection.transport === "rtu";
    if (rtu) {
      await requireHostPackages("serial");
      await requireHostPackages("modbus");
      driverHost.acquire(ctx.logger);
    }

    function connect(signal: AbortSignal): Promise<Connection> {
      if (connection.transport === "tcp") {
        return connectTcp(connection.host, connection.port, config.timeout);
      }
      return openRtu({
        device: ctx.name,
        path: connection.path,
        baud_rate: connection.baud_rate,
        data_bits: connection.data_bits,
        parity: connection.parity,
        stop_bits: connection.stop_bits,
        allowed_paths: connection.allowed_paths,
      }, signal);
    }

    async function session(conn: Connection, io: DeviceIO): Promise<void> {
      const exclusive = serializer();
      const stop = new AbortController();
      const onAbort = () => stop.abort();
      io.signal.addEventListener("abort", onAbort, { once: true });
      let lost: Error | undefined;
      void conn.closed.then((reason) => {
        lost = reason;
        stop.abort();
      });

      /** One read with retries on timeouts; throws the last timeout. */
      async function read(plan: ReadPlan) {
        let attempt = 0;
        for (;;) {
          try {
            return await exclusive(() =>
              conn.read({
                unit_id: plan.unit_id,
                table: plan.table,
                address: plan.address,
                length: plan.length,
                timeout: config.timeout,
              })
            );
          } catch (error) {
            if (
              !(error instanceof ModbusTimeout) || attempt >= config.retries || stop.signal.aborted
            ) {
              if (error instanceof ModbusTimeout) {
                throw new ModbusTimeout(
                  `No reply reading ${describeRead(plan)} on "${ctx.name}" after ${
                    attempt + 1
                  } tries of ${config.timeout} ms`,
                );
              }
              throw error;
            }
            attempt++;
          }
        }
      }

      /** Reads `plan` into `out`; an exception answer splits a batch so each error names its register. */
      async function readPlan(plan: ReadPlan, out: SampleInput[]): Promise<void> {
        const reply = await read(plan);
        if (reply.exception !== undefined) {
          if (plan.values.length > 1) {
            for (const v of plan.values) {
              await readPlan(planReads([v])[0]!, out);
            }
            return;
          }
          io.readError(
            new ModbusException(reply.exception, exceptionMessage(reply.exception, plan)),
          );
          return;
        }
        for (const v of plan.values) {
          try {
            const value = decodeValue(v, reply.data, plan.address);
            const sample: SampleInput = { device: ctx.name, metric: v.metric, value, ts: reply.ts };
            if (v.unit !== undefined) sample.unit = v.unit;
            out.push(stamp(sample));
          } catch (error) {
            io.readError(error);
          }
        }
      }

      async function poll(group: Group): Promise<void> {
        while (!stop.signal.aborted) {
          const started = ctx.clock.now();
          const samples: SampleInput[] = [];
          try {
            for (const plan of group.plans) await readPlan(plan, samples);
            io.up();
          } catch (error) {
            if (error instanceof ConnectionLost) {
              lost ??= error;
              stop.abort();
            }
            if (lost || stop.signal.aborted) break;
            if (error instanceof ModbusTimeout) io.down(error);
            else io.readError(error);
          }
          if (samples.length > 0) await io.emit(samples);
          const wait = Math.max(0, group.interval - (ctx.clock.now() - started));
          await sleepUnlessAborted(ctx.clock, wait, stop.signal);
        }
      }

      try {
        await Promise.all(groups.map(poll));
      } finally {
        io.signal.removeEventListener("abort", onAbort);
      }
      if (lost && !io.signal.aborted) throw lost;
    }

    const instance: DeviceInstance = {
      async run(io) {
        const conn = await connect(io.signal);
        try {
          io.up();
          await session(conn, io);
        } finally {
          await conn.close();
        }
      },
    };
    if (rtu) instance.close = () => driverHost.release();
    return instance;
  },
});

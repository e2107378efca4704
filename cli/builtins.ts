/**
 * The built-in plugins: a literal list, registered explicitly. Built-ins use
 * the public SDK (`core/mod.ts`) and nothing else from core.
 *
 * @module
 */
import type { AnyPluginDefinition } from "../core/plugin.ts";
import { PluginRegistry } from "../core/registry.ts";
import memory from "../plugins/memory/mod.ts";
import redis from "../plugins/redis/mod.ts";
import sqlite from "../plugins/sqlite/mod.ts";
import simulated from "../plugins/simulated/mod.ts";
import serial from "../plugins/serial/mod.ts";
import i2c from "../plugins/i2c/mod.ts";
import spi from "../plugins/spi/mod.ts";
import mqtt from "../plugins/mqtt/mod.ts";
import modbus from "../plugins/modbus/mod.ts";
import opcua from "../plugins/opcua/mod.ts";
import digest from "../handlers/digest/mod.ts";
import discard from "../handlers/discard/mod.ts";
import store from "../handlers/store/mod.ts";
import aggregate from "../handlers/aggregate/mod.ts";
import analyze from "../handlers/analyze/mod.ts";
import anomaly from "../handlers/anomaly/mod.ts";
import alert from "../handlers/alert/mod.ts";

/** Every built-in plugin definition. */
export const BUILTIN_PLUGINS: readonly AnyPluginDefinition[] = [
  simulated,
  serial,
  i2c,
  spi,
  mqtt,
  modbus,
  opcua,
  memory,
  sqlite,
  redis,
  digest,
  discard,
  store,
  aggregate,
  analyze,
  anomaly,
  alert,
];

/** A registry of the built-ins. */
export function builtinRegistry(): PluginRegistry {
  return PluginRegistry.of(BUILTIN_PLUGINS);
}

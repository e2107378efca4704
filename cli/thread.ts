/**
 * The module each thread isolate runs (`threads:`): the runtime's thread
 * side with the built-in plugins. Started by `run` as a Web Worker.
 *
 * @module
 */
import { serveThread } from "../core/runtime/thread.ts";
import { builtinRegistry } from "./builtins.ts";

serveThread(builtinRegistry);

/**
 * The thread module of test runtimes: the runtime's thread side with the
 * built-ins and the test plugins (see runtime.ts), as cli/thread.ts is for
 * the program.
 *
 * @module
 */
import { serveThread } from "../../core/runtime/thread.ts";
import { testRegistry } from "./runtime.ts";

serveThread(testRegistry);

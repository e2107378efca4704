// What host.mjs and the bus modules share: the open devices, output
// (newline-delimited JSON on stdout), errors and lazy loading of native packages.

/** Open devices by name. */
/** @type {Map<string, {kind: string, close: () => Promise<void>, [k: string]: any}>} */
export const devices = new Map();

// ------------------------------------------------------------------ output

let pending = [];
let flushScheduled = false;

/** Queues one message; messages written in the same tick go out as one write. */
export function send(message) {
  pending.push(JSON.stringify(message));
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

export function flush() {
  flushScheduled = false;
  if (pending.length === 0) return;
  const text = pending.join("\n") + "\n";
  pending = [];
  process.stdout.write(text);
}

export function emit(event, device, fields = {}) {
  send({ event, device, ts: Date.now(), ...fields });
}

export class HostError extends Error {
  constructor(message, code = "error") {
    super(message);
    this.code = code;
  }
}

// ---------------------------------------------------------------- modules

/** Imports a native package, mapping "not installed" to code `missing_packages`. */
export async function load(name) {
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

/**
 * One running driver host process and its wire protocol (see README.md):
 * requests matched to replies by id, events routed to device listeners,
 * every pending request and open device failed when the process dies.
 *
 * @module
 */
import { errorMessage, type Logger } from "../../core/mod.ts";

/** The error users see when the host's npm packages are missing. */
export const MISSING_PACKAGES_MESSAGE =
  'Serial, Modbus RTU, I2C and SPI devices need the driver host\'s packages: run "deno task drivers" ' +
  "(needs Node.js, npm, python3, make and g++)";

/** An event of the host about one device. */
export interface HostEvent {
  event: "data" | "samples" | "error" | "closed";
  device: string;
  /** Host time (ms since epoch) when the data was read. */
  ts: number;
  lines?: string[];
  error?: string;
}

/** A reply of the host to a request. */
export type HostReply = Record<string, unknown> & {
  ok: boolean;
  error?: string;
  code?: string;
};

/** A failed host request; `code` is the host's (`missing_packages`, `timeout`, `refused`…). */
export class DriverHostError extends Error {
  readonly code: string;
  constructor(message: string, code: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DriverHostError";
    this.code = code;
  }
}

/** Receives the events of one device. */
export type Listener = (event: HostEvent) => void | Promise<void>;

interface Pending {
  resolve(reply: HostReply): void;
  reject(error: Error): void;
}

/** How long a broken pipe waits for the host's exit status, which names the cause. */
const PIPE_FAILURE_GRACE_MS = 1000;

/** One running `node host.mjs`. */
export class HostProcess {
  readonly child: Deno.ChildProcess;
  readonly exited: Promise<Deno.CommandStatus>;
  readonly startedAt = Date.now();
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #encoder = new TextEncoder();
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #listeners = new Map<
    string,
    { listener: Listener; close: (error: Error) => void }
  >();
  #stderr = "";
  #dead: Error | undefined;
  /** When the process was seen dead (ms since epoch); 0 while alive. */
  diedAt = 0;

  constructor(script: string, fakeBus: boolean, logger: Logger) {
    const args = [script];
    if (fakeBus) args.push("--allow-fake-bus");
    try {
      this.child = new Deno.Command("node", {
        args,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new Error(
          `Cannot start the driver host: "node" is not installed. ${MISSING_PACKAGES_MESSAGE}`,
          {
            cause: error,
          },
        );
      }
      throw new Error(`Cannot start the driver host: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    this.#writer = this.child.stdin.getWriter();
    void this.#read();
    void this.#readStderr();
    this.exited = this.child.status.then((status) => {
      const how = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
      const tail = this.#stderr.trim().split("\n").slice(-3).join(" | ");
      this.#die(
        new Error(`Driver host exited (${how})${tail ? `: ${tail}` : ""}`),
      );
      if (status.code !== 0 || status.signal) {
        logger.warn("Driver host exited", { pid: this.child.pid, status: how });
      }
      return status;
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.#dead === undefined;
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let rest = "";
    try {
      for await (const chunk of this.child.stdout) {
        const lines = (rest + decoder.decode(chunk, { stream: true })).split(
          "\n",
        );
        rest = lines.pop() ?? "";
        for (const line of lines) {
          if (line) await this.#dispatch(line);
        }
      }
    } catch (error) {
      this.#die(
        await this.#reasonOf(
          new Error(`Driver host output failed: ${errorMessage(error)}`),
        ),
      );
    }
  }

  /**
   * Why the host is gone: a broken pipe is usually its death seen first, so
   * wait briefly for the exit, whose reason (`signal SIGKILL`) says more.
   */
  async #reasonOf(error: Error): Promise<Error> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.exited,
      new Promise<void>((resolve) => timer = setTimeout(resolve, PIPE_FAILURE_GRACE_MS)),
    ]);
    clearTimeout(timer);
    return this.#dead ?? error;
  }

  async #readStderr(): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of this.child.stderr) {
      // Keep only the tail, for the exit message.
      this.#stderr = (this.#stderr + decoder.decode(chunk, { stream: true }))
        .slice(-2000);
    }
  }

  async #dispatch(line: string): Promise<void> {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line);
    } catch {
      return; // not ours (a stray console.log of a native module)
    }
    if (typeof message.id === "number") {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      pending?.resolve(message as HostReply);
      return;
    }
    const event = message as unknown as HostEvent;
    const entry = this.#listeners.get(event.device);
    if (!entry) return;
    if (event.event === "closed") {
      this.#listeners.delete(event.device);
      entry.close(new Error(event.error ?? `Device "${event.device}" closed`));
      return;
    }
    // Awaited: a slow consumer (a full hub queue) holds back the host's output.
    await entry.listener(event);
  }

  #die(error: Error): void {
    if (this.#dead) return;
    this.#dead = error;
    this.diedAt = Date.now();
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
    for (const entry of this.#listeners.values()) entry.close(error);
    this.#listeners.clear();
  }

  request(
    op: string,
    params: Record<string, unknown> = {},
  ): Promise<HostReply> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    const reply = new Promise<HostReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
    });
    const text = JSON.stringify({ id, op, ...params }) + "\n";
    this.#writer.write(this.#encoder.encode(text)).catch(async (error) => {
      const reason = await this.#reasonOf(
        new Error(`Driver host input failed: ${errorMessage(error)}`),
      );
      this.#pending.get(id)?.reject(reason);
      this.#pending.delete(id);
    });
    return reply;
  }

  listen(
    device: string,
    listener: Listener,
    close: (error: Error) => void,
  ): void {
    this.#listeners.set(device, { listener, close });
  }

  unlisten(device: string): void {
    this.#listeners.delete(device);
  }

  async stop(): Promise<void> {
    try {
      await this.#writer.close(); // the host closes its devices and exits on end of input
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 2000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Throws the error of a failed reply, with the setup message for missing packages. */
export function check(reply: HostReply, what: string): HostReply {
  if (reply.ok) return reply;
  const code = reply.code ?? "error";
  if (code === "missing_packages") {
    throw new DriverHostError(
      `${MISSING_PACKAGES_MESSAGE} (${reply.error})`,
      code,
    );
  }
  throw new DriverHostError(`${what}: ${reply.error ?? "unknown error"}`, code);
}

/**
 * Fixtures of the modbus tests and bench: the server of `modbus_server.mjs`
 * (TCP under Deno on its own port, RTU under Node on a pty), stopped by pid.
 *
 * @module
 */
import { spawnListening } from "./tools.ts";

const SCRIPT = new URL("./modbus_server.mjs", import.meta.url).pathname;

/** A running Modbus server child. */
export interface ModbusServer {
  pid: number;
  /** Kills the server (SIGKILL, by pid) and waits for it. */
  stop(): Promise<void>;
}

function stopper(child: Deno.ChildProcess): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () =>
    stopped ??= (async () => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
    })();
}

/** Starts a Modbus TCP server (modbus-serial's ServerTCP under Deno) on `port`. */
export async function startModbusTcpServer(port: number): Promise<ModbusServer> {
  const child = await spawnListening(
    Deno.execPath(),
    ["run", "--allow-net=127.0.0.1", "--allow-read", "--allow-env", SCRIPT, "tcp", String(port)],
    port,
    20_000,
  );
  return { pid: child.pid, stop: stopper(child) };
}

/** Starts a Modbus RTU slave (modbus-serial's ServerSerial under Node) on the serial `path`. */
export async function startModbusRtuServer(path: string): Promise<ModbusServer> {
  const child = new Deno.Command("node", {
    args: [SCRIPT, "rtu", path],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = Date.now() + 20_000;
  while (!seen.includes("listening")) {
    const timer = setTimeout(() => child.kill("SIGKILL"), Math.max(0, deadline - Date.now()));
    const { value, done } = await reader.read();
    clearTimeout(timer);
    if (done) throw new Error(`Modbus RTU server on "${path}" exited before listening`);
    seen += value;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
  })();
  return { pid: child.pid, stop: stopper(child) };
}

/**
 * External tools the tests use. Under CI every one must be present (a
 * missing tool fails the test); locally a missing tool skips it, visibly.
 *
 * @module
 */

import { requireService } from "./services.ts";

/** Whether `name` is on the PATH. */
export function hasCommand(name: string): boolean {
  try {
    const out = new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "null" })
      .outputSync();
    return out.success;
  } catch {
    return false;
  }
}

/** `ignore` value for a test that needs the command `name` (see `requireService()`). */
export async function needs(name: string): Promise<boolean> {
  return !await requireService(
    `the command "${name}"`,
    () => hasCommand(name),
    "CI installs it; see .ci/run",
  );
}

/** Runs a command; returns exit code and combined output. */
export async function run(cmd: string, args: string[], stdin?: string) {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/**
 * Spawns `command` and resolves once `port` on 127.0.0.1 takes connections;
 * kills it and throws when that does not happen within `ms`.
 */
export async function spawnListening(
  command: string,
  args: string[],
  port: number,
  ms = 5000,
): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(command, { args, stdout: "null", stderr: "null" }).spawn();
  const end = Date.now() + ms;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return child;
    } catch (error) {
      if (Date.now() > end) {
        child.kill("SIGTERM");
        await child.status;
        throw new Error(`${command} did not listen on ${port}`, { cause: error });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * External tools the tests use. Under CI every one must be present (a
 * missing tool fails the test); locally a missing tool skips it, visibly.
 *
 * @module
 */

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

/** `ignore` value for a test that needs `name`: never ignored under CI. */
export function needs(name: string): boolean {
  const missing = !hasCommand(name);
  if (missing && Deno.env.get("CI") !== "true") {
    console.warn(`Skipping: "${name}" is not installed (CI installs it; see .ci/run)`);
  }
  return missing && Deno.env.get("CI") !== "true";
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

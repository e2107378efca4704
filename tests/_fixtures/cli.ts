/**
 * Runs the CLI as a subprocess with exactly the permissions its `deno task`
 * grants, so tests catch a task that lacks one.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** The `deno …` arguments of a task in deno.json (without the leading `deno`). */
export async function taskArgs(task: string): Promise<string[]> {
  const json = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const entry = json.tasks[task];
  const command: string = typeof entry === "string" ? entry : entry.command;
  const words = command.split(/\s+/);
  if (words[0] !== "deno") throw new Error(`Task "${task}" does not start with deno`);
  return words.slice(1);
}

/** Output of a finished CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link runTask} and {@link spawnTask}. */
export interface TaskOptions {
  env?: Record<string, string>;
  cwd?: string;
}

/** The `deno …` command a task runs, with piped output. */
async function taskCommand(task: string, args: string[], options: TaskOptions) {
  return new Deno.Command(Deno.execPath(), {
    args: [...await taskArgs(task), ...args],
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs `deno task <task> <args>` equivalent to completion. */
export async function runTask(
  task: string,
  args: string[],
  options: TaskOptions = {},
): Promise<CliResult> {
  const out = await (await taskCommand(task, args, options)).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Starts a task in the background, with piped output. */
export async function spawnTask(
  task: string,
  args: string[],
  options: TaskOptions = {},
): Promise<Deno.ChildProcess> {
  return (await taskCommand(task, args, options)).spawn();
}

/** Reads a stream into a growing string; `text()` returns what has arrived. */
export function collect(stream: ReadableStream<Uint8Array>): {
  text(): string;
  done: Promise<string>;
} {
  let buffer = "";
  const dec = new TextDecoder();
  const done = (async () => {
    for await (const chunk of stream) buffer += dec.decode(chunk, { stream: true });
    return buffer;
  })();
  return { text: () => buffer, done };
}

export { ROOT };

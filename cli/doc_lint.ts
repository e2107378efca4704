/**
 * `deno doc --lint` on the public SDK (the entries of deno.json's
 * `exports`), limited to this repository: `deno task check` runs it and it
 * exits 1 while any exported symbol of ours lacks JSDoc or names a type the
 * SDK does not export.
 *
 * Why not `deno doc --lint` alone: core/mod.ts re-exports zod as `z` (plugins
 * define their config schemas with it and import only the SDK), and the
 * linter then reports thousands of problems inside zod that we cannot fix.
 * Two kinds of diagnostic are left out:
 * - those located outside the repository (in the npm cache);
 * - `private-type-ref` about a type declared outside the repository, such
 *   as `z.ZodType` in `definePlugin()`: it is public as a member of `z`, but
 *   the linter does not follow the namespace into another package
 *   (denoland/deno#27364).
 *
 * @module
 */

/** One diagnostic of `deno doc --lint`, as it printed it. */
export interface DocDiagnostic {
  /** The lint rule, e.g. `missing-jsdoc`. */
  code: string;
  /** Absolute path of the file it is located in. */
  file: string;
  /** 1-based line of the location. */
  line: number;
  /**
   * For `private-type-ref`: the declaration the linter shows as "the
   * referenced type" (its line and text), whatever file it is in.
   */
  referenced?: { line: number; text: string };
  /** The whole diagnostic as printed, for the report. */
  text: string;
}

/** What `deno doc --lint` printed, read back. */
export interface DocLintOutput {
  diagnostics: DocDiagnostic[];
  /** The count in its last line (`Found N documentation lint errors.`); 0 when none. */
  found: number;
}

const HEADER = /^error\[([\w-]+)\]: /;
const LOCATION = /^\s*--> (.+):(\d+):(\d+)\s*$/;
const SNIPPET = /^\s*(\d+) \| ?(.*)$/;
const FOUND = /^error: Found (\d+) documentation lint errors?\./m;

/** Reads the diagnostics out of `deno doc --lint`'s output (with `NO_COLOR`). */
export function parseDocLint(output: string): DocLintOutput {
  const diagnostics: DocDiagnostic[] = [];
  let block: string[] | undefined;
  const finish = () => {
    if (block) diagnostics.push(diagnosticOf(block));
    block = undefined;
  };
  for (const line of output.split("\n")) {
    if (HEADER.test(line)) {
      finish();
      block = [line];
    } else if (line.startsWith("error: ")) finish();
    else block?.push(line);
  }
  finish();
  return { diagnostics, found: Number(FOUND.exec(output)?.[1] ?? 0) };
}

function diagnosticOf(lines: string[]): DocDiagnostic {
  const code = HEADER.exec(lines[0]!)![1]!;
  const at = lines.map((l) => LOCATION.exec(l)).find((m) => m !== null);
  const diagnostic: DocDiagnostic = {
    code,
    file: at?.[1] ?? "",
    line: Number(at?.[2] ?? 0),
    text: lines.join("\n").trimEnd(),
  };
  const hint = lines.findIndex((l) => /^\s*= hint:/.test(l));
  const shown = hint < 0 ? undefined : lines.slice(hint).map((l) => SNIPPET.exec(l)).find((m) => m);
  if (shown) diagnostic.referenced = { line: Number(shown[1]), text: shown[2]!.trim() };
  return diagnostic;
}

/**
 * The diagnostics that are ours to fix: located under `root`, and for a
 * `private-type-ref`, about a type declared in one of `sources` (the
 * repository's modules of the SDK, by path, as lines). A `private-type-ref`
 * whose referenced declaration cannot be read is kept.
 */
export function ownDiagnostics(
  diagnostics: readonly DocDiagnostic[],
  root: string,
  sources: ReadonlyMap<string, readonly string[]>,
): DocDiagnostic[] {
  const prefix = root.endsWith("/") ? root : root + "/";
  const declaredHere = ({ line, text }: { line: number; text: string }) =>
    [...sources.values()].some((lines) => lines[line - 1]?.trim() === text);
  return diagnostics.filter((d) =>
    d.file.startsWith(prefix) &&
    (d.code !== "private-type-ref" || d.referenced === undefined || declaredHere(d.referenced))
  );
}

async function deno(args: string[]): Promise<{ success: boolean; stdout: string; stderr: string }> {
  const { success, stdout, stderr } = await new Deno.Command("deno", {
    args,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { success, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/** The repository's modules that `entries` load, by path, as lines. */
async function localSources(root: string, entries: string[]): Promise<Map<string, string[]>> {
  const sources = new Map<string, string[]>();
  for (const entry of entries) {
    const info = await deno(["info", "--json", entry]);
    if (!info.success) throw new Error(`Cannot list the modules of "${entry}": ${info.stderr}`);
    const { modules } = JSON.parse(info.stdout) as { modules: Array<{ local?: string }> };
    for (const { local } of modules) {
      if (local?.startsWith(root + "/") && !sources.has(local)) {
        sources.set(local, (await Deno.readTextFile(local)).split("\n"));
      }
    }
  }
  return sources;
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const config = JSON.parse(await Deno.readTextFile(`${root}/deno.json`)) as {
    exports: Record<string, string>;
  };
  const entries = Object.values(config.exports).map((path) => `${root}/${path}`);
  const run = await deno(["doc", "--lint", ...entries]);
  const output = parseDocLint(run.stderr);
  if (!run.success && output.found === 0) {
    console.error(`deno doc --lint failed:\n${run.stderr}`);
    Deno.exit(2);
  }
  if (output.diagnostics.length !== output.found) {
    console.error(
      `Read ${output.diagnostics.length} diagnostics where deno doc --lint reports ${output.found}: ` +
        `has its output format changed?`,
    );
    Deno.exit(2);
  }
  const own = ownDiagnostics(output.diagnostics, root, await localSources(root, entries));
  for (const d of own) console.log(d.text + "\n");
  const ignored = output.found - own.length;
  if (own.length > 0) {
    const problems = own.length === 1
      ? "1 documentation problem"
      : `${own.length} documentation problems`;
    console.error(`${problems} in the SDK (${ignored} in dependencies ignored)`);
    Deno.exit(1);
  }
  console.log(`SDK documentation complete (${ignored} problems in dependencies ignored)`);
}

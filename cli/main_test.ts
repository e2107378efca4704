import assert from "node:assert/strict";
import { main, REPEATED_STOP_SIGNAL_MS, stopSignalMeaning, versionLine } from "./main.ts";

Deno.test("stopSignalMeaning() takes copies within the window as the same stop and a later one as exit", () => {
  assert.equal(stopSignalMeaning(undefined, 5_000), "stop");
  assert.equal(stopSignalMeaning(5_000, 5_000), "same stop");
  assert.equal(stopSignalMeaning(5_000, 5_000 + REPEATED_STOP_SIGNAL_MS - 1), "same stop");
  assert.equal(stopSignalMeaning(5_000, 5_000 + REPEATED_STOP_SIGNAL_MS), "exit now");
  assert.equal(stopSignalMeaning(5_000, 60_000), "exit now");
});

/** Runs main() with captured output. */
async function cli(...args: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

Deno.test("every command answers --help with its usage and exit 0", async () => {
  for (const command of ["run", "validate", "plugins", "schema", "version"]) {
    const r = await cli(command, "--help");
    assert.equal(r.code, 0, command);
    assert.match(r.out, new RegExp(`^Usage: telemetryhub ${command}`), command);
  }
  const whole = await cli("--help");
  assert.equal(whole.code, 0);
  assert.match(whole.out, /Exit codes: 0 success/);
});

Deno.test("--version and version print the version of TelemetryHub and of Deno", async () => {
  for (
    const args of [["--version"], ["version"], ["-V"], ["run", "--version"], [
      "validate",
      "--version",
    ]]
  ) {
    const r = await cli(...args);
    assert.equal(r.code, 0);
    assert.equal(r.out, versionLine());
  }
  assert.match(versionLine(), /^telemetryhub \d+\.\d+\.\d+ \(deno \d+\.\d+\.\d+\)$/);
});

Deno.test("unknown options and extra arguments are usage errors (exit 2) on every command", async () => {
  for (
    const args of [
      ["schema", "--bogus"],
      ["plugins", "--bogus"],
      ["plugins", "extra"],
      ["run", "--bogus"],
      ["validate", "a.yaml", "b.yaml"],
      ["run", "a.yaml", "b.yaml"],
      ["validate", "--config", "a.yaml", "b.yaml"],
      ["version", "--bogus"],
    ]
  ) {
    const r = await cli(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.err, /Usage: telemetryhub/, args.join(" "));
  }
  assert.match(
    (await cli("validate", "a.yaml", "b.yaml")).err,
    /Too many arguments: "a.yaml", "b.yaml"/,
  );
});

Deno.test("run --for needs a unit", async () => {
  const r = await cli("run", "--for", "10");
  assert.equal(r.code, 2);
  assert.match(r.err, /Invalid --for "10"; expected a duration with a unit such as "10s"/);
});

/**
 * Stop signals as they really arrive. Ctrl-C in a terminal, and SIGTERM to a
 * process group (`kill -TERM -- -PGID`, systemd's default `KillMode`), signal
 * both `deno task` and the runtime it started, and `deno task` passes its own
 * copy on: the runtime gets the signal twice at once, and that is one stop.
 *
 * @module
 */
import assert from "node:assert/strict";
import { REPEATED_STOP_SIGNAL_MS } from "../cli/main.ts";
import { collect, ROOT } from "./_fixtures/cli.ts";
import { waitFor } from "./_fixtures/runtime.ts";
import { needs } from "./_fixtures/tools.ts";

const FIXTURES = "tests/_fixtures/stop_signals";
const SUMMARY =
  /^Stopped after [\d.]+s: (\d+) samples read, (\d+) tasks completed, (\d+) retried, (\d+) dead-lettered, (\d+) samples dropped$/m;

/**
 * `deno task run --config <config>` as the leader of its own process group
 * (`setsid`), so a signal can go to the group as a terminal or systemd sends it.
 */
function spawnGroup(config: string) {
  const child = new Deno.Command("setsid", {
    args: [Deno.execPath(), "task", "run", "--config", config],
    cwd: ROOT,
    env: { NO_COLOR: "1", TELEMETRY_LOG_LEVEL: "debug" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = collect(child.stdout);
  const stderr = collect(child.stderr);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  return {
    stdout,
    stderr,
    status,
    exited: () => exited,
    /** Signals every process of the group: `deno task` and the runtime. */
    signalGroup(signal: Deno.Signal) {
      // A child of this process is never a group leader, so setsid made it one
      // without forking: its pid is the group's id.
      Deno.kill(-child.pid, signal);
    },
    async kill() {
      if (!exited) {
        try {
          Deno.kill(-child.pid, "SIGKILL");
        } catch { /* already gone */ }
      }
      await status;
      await Promise.all([stdout.done, stderr.done]);
    },
  };
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} to the process group of deno task run is one stop: it drains, prints the summary and exits 0`, async () => {
    const run = spawnGroup(`${FIXTURES}/telemetry.yaml`);
    try {
      await waitFor(() => run.stderr.text().includes('"msg":"Started"'), "the start", 30_000);
      // Tasks flowing, so the drain has some to finish.
      await waitFor(() => run.stderr.text().includes('"handled":10'), "ten tasks handled");
      run.signalGroup(signal);
      // The runtime gets two copies: they may arrive together (and be seen as one) or
      // the second after the runtime began to stop. Another copy right after "Stopping"
      // makes the second order certain; it is still within the window.
      await waitFor(() => run.stderr.text().includes('"msg":"Stopping"'), "the stop");
      run.signalGroup(signal);
      const status = await run.status;
      const out = await run.stdout.done;
      const err = await run.stderr.done;
      assert.doesNotMatch(err, /Second stop signal/);
      assert.equal(status.code, 0, err);
      const match = out.match(SUMMARY);
      assert.ok(match, `no summary line in ${JSON.stringify(out)}`);
      const [, read, completed, , dead, dropped] = match.map(Number);
      assert.ok(read! > 0, "samples read");
      assert.ok(completed! > 0, "tasks completed");
      assert.equal(dead, 0);
      assert.equal(dropped, 0, "the drain lost nothing");
      const afterStop = err.slice(err.indexOf('"msg":"Stopping"'));
      assert.match(
        afterStop,
        /"msg":"Task handled"/,
        "tasks queued at the stop were handled: deno task waited for the drain",
      );
      assert.equal(
        err.split('"msg":"Stopping"').length - 1,
        1,
        "one stop, however many copies of the signal",
      );
    } finally {
      await run.kill();
    }
  });
}

Deno.test("a second stop signal sent after the first one's window exits at once with 130", async () => {
  // The handler never returns and the grace is 5 minutes: only a second signal ends this stop.
  const run = spawnGroup(`${FIXTURES}/hold.yaml`);
  try {
    await waitFor(() => run.stderr.text().includes('"msg":"Started"'), "the start", 30_000);
    run.signalGroup("SIGINT");
    await waitFor(() => run.stderr.text().includes('"msg":"Stopping"'), "the stop");
    // What is tested is a time: a signal later than the window is a person's second
    // Ctrl-C. "Stopping" was logged after the first signal arrived, so once the window
    // has passed since we read it, it has passed for the runtime too.
    const seen = Date.now();
    await waitFor(() => Date.now() - seen > REPEATED_STOP_SIGNAL_MS + 200, "the window to pass");
    assert.equal(run.exited(), false, "the copies of the first signal did not end the process");
    run.signalGroup("SIGINT");
    const status = await run.status;
    const out = await run.stdout.done;
    const err = await run.stderr.done;
    assert.equal(status.code, 130, err);
    assert.match(err, /Second stop signal: exiting without waiting/);
    assert.doesNotMatch(out, SUMMARY);
  } finally {
    await run.kill();
  }
});

// ---------------------------------------------------------------- a real terminal

/** A private tmux server (its own socket), so no other session is touched. */
function tmux(socket: string, ...args: string[]): Promise<Deno.CommandOutput> {
  return new Deno.Command("tmux", {
    args: ["-L", socket, "-f", "/dev/null", ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
}

Deno.test({
  name: "Ctrl-C on deno task run in a real terminal drains, prints the summary and exits 0",
  ignore: await needs("tmux"),
  async fn() {
    const socket = `telemetry-test-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    const screen = async () => {
      const out = await tmux(socket, "capture-pane", "-p", "-J", "-S", "-1000", "-t", "hub");
      return new TextDecoder().decode(out.stdout);
    };
    const started = await tmux(
      socket,
      "new-session",
      "-d",
      "-s",
      "hub",
      "-x",
      "250",
      "-y",
      "50",
      "-c",
      ROOT,
      "/bin/sh",
    );
    assert.equal(started.code, 0, new TextDecoder().decode(started.stderr));
    try {
      // Typed as a person would; the shell prints the exit status afterwards.
      const command = `'${Deno.execPath()}' task run --config ${FIXTURES}/telemetry.yaml; ` +
        `echo "exit status $?"`;
      await tmux(socket, "send-keys", "-t", "hub", "-l", command);
      await tmux(socket, "send-keys", "-t", "hub", "Enter");
      await waitFor(async () => /INFO\s+Started/.test(await screen()), "the start", 30_000);
      await tmux(socket, "send-keys", "-t", "hub", "C-c");
      await waitFor(async () => /^exit status \d+/m.test(await screen()), "the exit", 30_000);
      const text = await screen();
      assert.doesNotMatch(text, /Second stop signal/);
      assert.match(text, SUMMARY);
      assert.match(text, /^exit status 0$/m, text);
    } finally {
      await tmux(socket, "kill-server");
    }
  },
});

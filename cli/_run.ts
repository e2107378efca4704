/**
 * `telemetryhub run`: starts the runtime and the admin server, reloads on
 * SIGHUP, and drains on SIGINT or SIGTERM.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { builtinRegistry } from "./builtins.ts";
import { MAX_TIMER_MS, parseDuration } from "../core/duration.ts";
import { ConfigError, errorMessage, formatProblem } from "../core/errors.ts";
import { createLogger, LOG_LEVELS, type LogLevel } from "../core/log.ts";
import { formatSummary, Runtime } from "../core/runtime/runtime.ts";
import { createAdminApp, type ReloadOutcome } from "../core/admin/app.ts";
import { type AdminListener, serveAdmin } from "../core/admin/serve.ts";
import { redactText } from "../core/redact.ts";
import denoJson from "../deno.json" with { type: "json" };
import { type CliIO, configPath, help, load, pickRole, printConfigError } from "./_common.ts";

/**
 * How long after the first stop signal another SIGINT or SIGTERM is the same
 * stop. Ctrl-C in a terminal signals the whole foreground process group, so
 * under `deno task` this process gets SIGINT from the terminal and again from
 * `deno task` passing its own on; `kill -TERM -- -PGID` (and systemd's default
 * `KillMode=control-group`) does the same with SIGTERM. Those copies arrive
 * within milliseconds; a person pressing Ctrl-C again to give up on the drain
 * takes longer than a second.
 */
export const REPEATED_STOP_SIGNAL_MS = 1000;

/**
 * What a SIGINT or SIGTERM received at `now` means, given when the first one
 * arrived (`undefined`: none yet); times from one monotonic clock, in ms.
 */
export function stopSignalMeaning(
  firstAt: number | undefined,
  now: number,
): "stop" | "same stop" | "exit now" {
  if (firstAt === undefined) return "stop";
  return now - firstAt < REPEATED_STOP_SIGNAL_MS ? "same stop" : "exit now";
}

export async function runCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      role: { type: "string" },
      for: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return help("run", io);
  const path = configPath(values.config, positionals, "run");
  const role = pickRole(values.role, io);
  if (role === null) return 2;
  let runFor: number | undefined;
  if (values.for !== undefined) {
    // On the command line a bare number is a mistake more often than milliseconds.
    runFor = /[a-z]\s*$/i.test(values.for) ? parseDuration(values.for) : undefined;
    if (runFor === undefined) {
      io.err(`Invalid --for "${values.for}"; expected a duration with a unit such as "10s"`);
      return 2;
    }
    if (runFor > MAX_TIMER_MS) {
      io.err(
        `Invalid --for "${values.for}"; must be at most ${MAX_TIMER_MS}ms (about 24.8 days), ` +
          "the longest a timer can wait",
      );
      return 2;
    }
  }
  let loaded;
  try {
    loaded = await load(path, builtinRegistry(), role);
  } catch (error) {
    if (error instanceof ConfigError) {
      printConfigError(error, io);
      return 2;
    }
    throw error;
  }
  const envLevel = Deno.env.get("TELEMETRY_LOG_LEVEL");
  const level: LogLevel = (LOG_LEVELS as readonly string[]).includes(envLevel ?? "")
    ? envLevel as LogLevel
    : loaded.config.log.level;
  const format = loaded.config.log.format;
  // One set for the process: secrets of reloaded configurations join it.
  const secrets = new Set(loaded.secrets);
  const logger = createLogger({
    level,
    ...(format === "auto" ? {} : { format }),
    secrets,
  });
  for (const w of loaded.warnings) logger.warn(formatProblem(w));

  let runtime: Runtime;
  try {
    runtime = await Runtime.create(loaded, {
      ...(role ? { role } : {}),
      logger,
      baseDir: dirname(resolve(path)),
      threadModule: new URL("./thread.ts", import.meta.url),
    });
  } catch (error) {
    // A plugin's create() may quote its settings (a database URL with its password).
    io.err(redactText(errorMessage(error), secrets));
    return 1;
  }

  const stopRequested = Promise.withResolvers<string>();
  let firstStopAt: number | undefined;
  const onSignal = (name: Deno.Signal) => () => {
    const now = performance.now();
    switch (stopSignalMeaning(firstStopAt, now)) {
      case "stop":
        firstStopAt = now;
        logger.info("Stopping", { signal: name });
        stopRequested.resolve(name);
        break;
      case "same stop":
        logger.debug("Stop signal repeated at once; taken as the same stop", { signal: name });
        break;
      case "exit now":
        io.err("Second stop signal: exiting without waiting");
        Deno.exit(130);
    }
  };
  const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => {
    const h = onSignal(s);
    Deno.addSignalListener(s, h);
    return [s, h] as const;
  });
  const timer = runFor === undefined
    ? undefined
    : setTimeout(() => stopRequested.resolve("timer"), runFor);

  let redacted = loaded.redacted;
  let listener: AdminListener | undefined;
  let reloading: Promise<ReloadOutcome> | undefined;
  const reload = (): Promise<ReloadOutcome> => {
    // One reload at a time; a second request waits for the first.
    const run = async (): Promise<ReloadOutcome> => {
      let next;
      try {
        next = await load(path, builtinRegistry(), role);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        const problems = error.problems.map(formatProblem);
        logger.error("Reload refused: the configuration is invalid; keeping the running one", {
          problems,
        });
        return { ok: false, problems };
      }
      for (const s of next.secrets) secrets.add(s);
      try {
        const report = await runtime.reload(next);
        redacted = next.redacted;
        // Renewed certificate files are picked up by any reload.
        await listener?.reloadTls();
        return { ok: true, restarted: report.restarted, unchanged: report.unchanged };
      } catch (error) {
        logger.error("Reload failed", { error: errorMessage(error) });
        return { ok: false, problems: [errorMessage(error)] };
      }
    };
    reloading = (reloading ?? Promise.resolve()).then(run, run);
    return reloading;
  };
  const onHangup = () => void reload();
  Deno.addSignalListener("SIGHUP", onHangup);

  // Listen before starting anything, so a busy port stops the process before it reads a
  // device or takes a task.
  const serverAbort = new AbortController();
  if (loaded.config.admin.enabled) {
    runtime.metrics.enableDefaultMetrics();
    runtime.metrics.buildInfo.labels(denoJson.version, Deno.version.deno).set(1);
    const app = createAdminApp(runtime, {
      registry: loaded.registry,
      redactedConfig: () => redacted,
      version: denoJson.version,
      reload,
      secrets,
      baseDir: dirname(resolve(path)),
      ...(role ? { role } : {}),
    });
    try {
      listener = await serveAdmin(app, {
        admin: loaded.config.admin,
        baseDir: dirname(resolve(path)),
        logger,
        signal: serverAbort.signal,
      });
    } catch (error) {
      io.err(
        redactText(
          `Cannot serve the admin API on "${loaded.config.admin.listen}": ${errorMessage(error)}` +
            " (change admin.listen or admin.tls, or set admin.enabled: false)",
          secrets,
        ),
      );
      await runtime.stop();
      Deno.removeSignalListener("SIGHUP", onHangup);
      for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
      if (timer !== undefined) clearTimeout(timer);
      return 1;
    }
  }
  runtime.start();
  await stopRequested.promise;
  if (timer !== undefined) clearTimeout(timer);
  Deno.removeSignalListener("SIGHUP", onHangup);
  await reloading?.catch(() => {});
  const summary = await runtime.stop();
  serverAbort.abort();
  await listener?.finished;
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  io.out(formatSummary(summary));
  return 0;
}

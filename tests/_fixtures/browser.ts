/**
 * A real browser for tests: Debian's chromium (`apt-get install chromium`)
 * driven by playwright-core. {@link HAVE_CHROMIUM} follows `requireService()`:
 * skipped locally when missing, a failure under `CI=true`.
 *
 * @module
 */
import fs from "node:fs";
import type { Browser } from "playwright-core";
import { requireService } from "./services.ts";

/** Where Debian installs chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether the browser tests may run: checked once per file (top-level await). */
export const HAVE_CHROMIUM = await requireService(
  `Chromium at "${CHROMIUM}"`,
  async () => (await Deno.stat(CHROMIUM)).isFile,
  "apt-get install chromium",
);

/**
 * Launches headless chromium. playwright-core probes `/proc/sys/fs/binfmt_misc`
 * (a WSL check) when it loads, which Deno grants only with `--allow-all`; the
 * tests run with the project's narrower flags, so that probe answers "absent"
 * (true: this is not WSL) and playwright is imported afterwards.
 */
export async function launchChromium(): Promise<Browser> {
  const exists = fs.existsSync;
  fs.existsSync =
    ((path: fs.PathLike) =>
      String(path).startsWith("/proc/sys/fs/binfmt_misc/") ? false : exists(path)) as typeof exists;
  const { chromium } = await import("playwright-core");
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
    ],
  });
}

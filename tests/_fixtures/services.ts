/**
 * The one way tests say they need a service or tool: locally a missing one
 * skips them with a message naming it; under `CI=true` it fails them, so CI
 * never passes by skipping.
 *
 * @module
 */

/**
 * Whether the tests needing `what` may run: `true` when `probe` succeeds.
 * When it fails, under `CI=true` this throws (naming `what` and the cause);
 * otherwise it warns once that the tests are skipped and returns `false`.
 * Use the result as `ignore: !available`.
 *
 * @example
 * ```ts ignore
 * const HAVE_REDIS = await requireService("Redis at 127.0.0.1:6379", () => ping());
 * Deno.test({ name: "…", ignore: !HAVE_REDIS, fn() {} });
 * ```
 */
export async function requireService(
  what: string,
  probe: () => Promise<unknown> | unknown,
  hint = "",
): Promise<boolean> {
  try {
    const ok = await probe();
    if (ok === false) throw new Error("not available");
    return true;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (Deno.env.get("CI") === "true") {
      throw new Error(`${what} is required under CI: ${why}${hint ? ` (${hint})` : ""}`, {
        cause: error,
      });
    }
    console.warn(`Skipping tests that need ${what}: ${why}${hint ? ` (${hint})` : ""}`);
    return false;
  }
}

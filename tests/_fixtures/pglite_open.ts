/**
 * Opens the PGlite data directory given as the argument through
 * `openDatabase()` and prints `opened` or the error, then closes it. For the
 * test that a second process cannot open a directory in use.
 *
 * @module
 */
import { testContext } from "../../core/testing.ts";
import { openDatabase } from "../../handlers/_db/mod.ts";

const [dir] = Deno.args;
if (!dir) throw new Error("Usage: pglite_open.ts <data_dir>");
try {
  const db = await openDatabase(
    { url: "", data_dir: dir, schema: "public", pool: 1, connect_timeout: 5000 },
    testContext(),
  );
  await db.release();
  console.log("opened");
} catch (error) {
  console.log(error instanceof Error ? error.message : String(error));
}

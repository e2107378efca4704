/**
 * Opens the database of `url` and `schema` (applying migrations) and
 * prints the versions this process applied as JSON. For the concurrent
 * migration test, which starts several of these at once.
 *
 * @module
 */
import { DatabaseCore } from "../../handlers/_db/_database.ts";
import { openPostgres } from "../../handlers/_db/_drivers.ts";

const [url, schema] = Deno.args;
if (!url || !schema) throw new Error("Usage: pg_migrate.ts <url> <schema>");
const driver = await openPostgres({ url, pool: 1, connectTimeoutMs: 5000 });
const core = new DatabaseCore(driver, schema);
const applied = await core.migrate();
console.log(JSON.stringify(applied));
await driver.close();

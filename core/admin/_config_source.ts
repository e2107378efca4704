/**
 * The configuration file as written (`GET /api/v1/config/source`), mounted
 * under `/api/v1`: its text with every secret hidden, comments and
 * `${…}` references kept, so the console can show it and validate an
 * edited copy. `GET /api/v1/config` is the effective configuration instead
 * (defaults filled in, variables substituted), which is not a file
 * `validate` accepts.
 *
 * @module
 */
import { Hono } from "@hono/hono";
import { errorMessage } from "../errors.ts";
import { problem } from "./_problem.ts";

/** What the route needs from the process. */
export interface ConfigSourceDesk {
  /** Absolute path of the configuration file in force; `<input>` when it was not read from one. */
  file(): string;
  read(path: string): Promise<string>;
  /** Hides the secrets the process knows (see `redactText`). */
  redact(text: string): string;
}

/** The routes, relative to `/api/v1`. */
export function configSourceRoutes(desk: ConfigSourceDesk): Hono {
  const routes = new Hono();

  routes.get("/config/source", async (c) => {
    const file = desk.file();
    if (file === "<input>") {
      return problem(
        c,
        404,
        "No configuration file",
        "This configuration was not read from a file",
      );
    }
    let text;
    try {
      text = await desk.read(file);
    } catch (error) {
      return problem(
        c,
        404,
        "Configuration file unreadable",
        `Cannot read "${file}": ${errorMessage(error)}`,
      );
    }
    return c.json({ file, text: desk.redact(text) });
  });

  return routes;
}

/**
 * The configuration routes (`/api/v1/config`, `/config/validate`,
 * `/reload`), mounted under `/api/v1`.
 *
 * @module
 */
import { Hono } from "@hono/hono";
import type { LoadedConfig } from "../config/mod.ts";
import { ConfigError, formatProblem } from "../errors.ts";
import { bodyLimit } from "./_body.ts";
import { accepts } from "./_guard.ts";
import { problem } from "./_problem.ts";

/** What a reload did. */
export type ReloadOutcome =
  | { ok: true; restarted: string[]; unchanged: string[] }
  | { ok: false; problems: string[] };

/** What these routes need from the process. */
export interface ConfigDesk {
  /** The effective configuration with secrets redacted (changes on reload). */
  redactedConfig(): unknown;
  /**
   * Checks posted YAML as `validate` would, without importing any module;
   * throws {@link ConfigError} with the problems.
   */
  validate(text: string): Promise<Pick<LoadedConfig, "warnings">>;
  /** Re-reads and applies the configuration file; absent, reload answers 404. */
  reload?: () => Promise<ReloadOutcome>;
}

/** Media types of a posted configuration. */
const YAML_TYPES = [
  "application/yaml",
  "application/x-yaml",
  "text/yaml",
  "text/x-yaml",
  "application/json",
  "",
];

/** The routes, relative to `/api/v1`. */
export function configRoutes(desk: ConfigDesk, { maxBody }: { maxBody: number }): Hono {
  const routes = new Hono();
  const limit = bodyLimit(maxBody);

  routes.get("/config", (c) => c.json(desk.redactedConfig()));

  routes.post("/config/validate", accepts(YAML_TYPES), limit, async (c) => {
    const text = await c.req.text();
    try {
      const loaded = await desk.validate(text);
      return c.json({ valid: true, problems: [], warnings: loaded.warnings.map(formatProblem) });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return c.json(
        {
          valid: false,
          problems: error.problems.map((p) => ({ ...p, text: formatProblem(p) })),
        },
        422,
      );
    }
  });

  routes.post("/reload", accepts(["", "application/json"]), async (c) => {
    if (!desk.reload) return problem(c, 404, "Reload unavailable", "This process cannot reload");
    const outcome = await desk.reload();
    if (!outcome.ok) {
      return c.json({ reloaded: false, problems: outcome.problems }, 422);
    }
    return c.json({ reloaded: true, restarted: outcome.restarted, unchanged: outcome.unchanged });
  });

  return routes;
}

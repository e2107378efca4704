/**
 * The configuration routes (`/api/v1/config`, `/config/validate`,
 * `/reload`), mounted under `/api/v1`.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { LoadedConfig } from "../config/mod.ts";
import { ConfigError, formatProblem } from "../errors.ts";
import { bodyLimit } from "./_body.ts";
import { accepts } from "./_guard.ts";
import { problem, ProblemSchema } from "./_problem.ts";
import { invalidRequest, json, problemResponse } from "./openapi.ts";

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

const ConfigProblemSchema = z.object({
  file: z.string().openapi({ description: '"<input>" for posted text' }),
  line: z.number().int().openapi({ description: "1-based; 0 when unknown" }),
  col: z.number().int().openapi({ description: "1-based; 0 when unknown" }),
  path: z.string().openapi({ description: "Dotted path in the document" }),
  message: z.string(),
  text: z.string().openapi({ description: "file:line:col path: message" }),
}).openapi("ConfigProblem");

/** 422: a problem body that also lists every positioned problem. */
const refusedConfig = <X extends z.ZodRawShape>(description: string, extra: X) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema.extend(extra) } },
});

const getConfig = createRoute({
  method: "get",
  path: "/config",
  operationId: "getConfig",
  summary: "The effective configuration, every secret shown as ***",
  tags: ["configuration"],
  responses: {
    200: json(z.record(z.string(), z.unknown()).openapi("Configuration"), "The configuration"),
  },
});

const validateConfig = createRoute({
  method: "post",
  path: "/config/validate",
  operationId: "validateConfig",
  summary: "Validate a posted telemetry.yaml as `deno task validate` does",
  description: "Config tests are not run and plugin modules are not imported.",
  tags: ["configuration"],
  request: {
    body: {
      required: true,
      content: Object.fromEntries(
        YAML_TYPES.filter((t) => t !== "").map((t) => [t, {
          schema: { type: "string", description: "A telemetry.yaml document" },
        }]),
      ),
    },
  },
  responses: {
    200: json(
      z.object({
        valid: z.literal(true),
        problems: z.array(ConfigProblemSchema).max(0),
        warnings: z.array(z.string()),
      }),
      "Valid (warnings may follow)",
    ),
    413: problemResponse("Body over admin.max_body"),
    415: problemResponse("Not YAML or JSON"),
    422: refusedConfig("Invalid: every problem, positioned", {
      valid: z.literal(false),
      problems: z.array(ConfigProblemSchema),
    }),
  },
});

const reloadConfig = createRoute({
  method: "post",
  path: "/reload",
  operationId: "reload",
  summary: "Re-read telemetry.yaml and plugin modules; restart what changed",
  description: "Pipelines whose settings, devices, broker or handlers changed restart " +
    "(in-flight tasks finish first), the others keep running. A changed file: plugin module " +
    "is imported afresh. An invalid file is refused and nothing changes.",
  tags: ["configuration"],
  responses: {
    200: json(
      z.object({
        reloaded: z.literal(true),
        restarted: z.array(z.string()),
        unchanged: z.array(z.string()),
      }),
      "Applied",
    ),
    404: problemResponse("This process cannot reload"),
    415: problemResponse("A body other than application/json"),
    422: refusedConfig("Refused: positioned problems; nothing changed", {
      reloaded: z.literal(false),
      problems: z.array(z.string()),
    }),
  },
});

/** The routes, relative to `/api/v1`. */
export function configRoutes(desk: ConfigDesk, { maxBody }: { maxBody: number }): OpenAPIHono {
  const routes = new OpenAPIHono({ defaultHook: invalidRequest("Invalid request") });
  const limit = bodyLimit(maxBody);

  routes.openapi(getConfig, (c) => c.json(desk.redactedConfig() as Record<string, unknown>, 200));

  routes.openapi(
    { ...validateConfig, middleware: [accepts(YAML_TYPES), limit] as const },
    async (c) => {
      const text = await c.req.text();
      try {
        const loaded = await desk.validate(text);
        return c.json(
          { valid: true as const, problems: [], warnings: loaded.warnings.map(formatProblem) },
          200,
        );
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        const n = error.problems.length;
        return problem(c, 422, "Invalid configuration", `${n} problem${n === 1 ? "" : "s"}`, {
          valid: false as const,
          problems: error.problems.map((p) => ({ ...p, text: formatProblem(p) })),
        });
      }
    },
  );

  routes.openapi(
    { ...reloadConfig, middleware: [accepts(["", "application/json"])] as const },
    async (c) => {
      if (!desk.reload) {
        return problem(c, 404, "Reload unavailable", "This process cannot reload");
      }
      const outcome = await desk.reload();
      if (!outcome.ok) {
        return problem(c, 422, "Reload refused", outcome.problems.join("\n"), {
          reloaded: false as const,
          problems: outcome.problems,
        });
      }
      return c.json({
        reloaded: true as const,
        restarted: outcome.restarted,
        unchanged: outcome.unchanged,
      }, 200);
    },
  );

  return routes;
}

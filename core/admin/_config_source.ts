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
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { isScalar, parseDocument, visit } from "yaml";
import { errorMessage } from "../errors.ts";
import { problem } from "./_problem.ts";
import { json, problemResponse } from "./openapi.ts";

/** What the route needs from the process. */
export interface ConfigSourceDesk {
  /** Absolute path of the configuration file in force; `<input>` when it was not read from one. */
  file(): string;
  read(path: string): Promise<string>;
  /** Hides the secrets the process knows (see `redactText`). */
  redact(text: string): string;
}

/**
 * `text` with `redact` applied, still YAML that `validate` reads as the
 * original: a string that changes is written again double-quoted in place
 * (a bare `***` would be a YAML alias), and then the whole text is redacted
 * too (comments, keys). Nothing else moves: lines stay where they were
 * unless a secret spanned several.
 */
export function redactYaml(text: string, redact: (text: string) => string): string {
  const doc = parseDocument(text, { keepSourceTokens: false });
  const edits: Array<{ start: number; end: number; value: string }> = [];
  visit(doc, {
    Scalar(_key, node) {
      if (!isScalar(node) || typeof node.value !== "string" || !node.range) return;
      const hidden = redact(node.value);
      if (hidden === node.value) return;
      // A block scalar's range ends after its line break: keep that.
      const [start, end] = node.range;
      const tail = /\s*$/.exec(text.slice(start, end))![0];
      edits.push({ start, end: end - tail.length, value: JSON.stringify(hidden) });
    },
  });
  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start)) {
    out = out.slice(0, e.start) + e.value + out.slice(e.end);
  }
  return redact(out);
}

const getConfigSource = createRoute({
  method: "get",
  path: "/config/source",
  operationId: "getConfigSource",
  summary: "The configuration file as written, secrets hidden",
  description: 'Comments and `${…}` kept; each secret shown as `"***"` (quoted, so the text ' +
    "still validates).",
  tags: ["configuration"],
  responses: {
    200: json(
      z.object({
        file: z.string().openapi({ description: "Absolute path of the file" }),
        text: z.string(),
      }),
      "The file",
    ),
    404: problemResponse("Not read from a file, or the file cannot be read"),
  },
});

/** The routes, relative to `/api/v1`. */
export function configSourceRoutes(desk: ConfigSourceDesk): OpenAPIHono {
  const routes = new OpenAPIHono();

  routes.openapi(getConfigSource, async (c) => {
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
    return c.json({ file, text: redactYaml(text, desk.redact) }, 200);
  });

  return routes;
}

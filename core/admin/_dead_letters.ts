/**
 * Task records and the dead-letter workbench (`/api/v1/tasks/:id`,
 * `/api/v1/dlq`, replay and purge), mounted under `/api/v1`.
 *
 * @module
 */
import type { Context } from "@hono/hono";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  type BrokerInstance,
  type DeadLetterBrowsing,
  type DeadLetterSelector,
  hasCapability,
} from "../broker.ts";
import { PRIORITIES } from "../schema.ts";
import { TASK_STATES } from "../task.ts";
import { bodyLimit } from "./_body.ts";
import { accepts } from "./_guard.ts";
import { problem, type ProblemResponse } from "./_problem.ts";
import { invalidRequest, json, optionalText, problemResponse } from "./openapi.ts";

/** What these routes need from the runtime. */
export interface DeadLetterDesk {
  /** Every broker of the process. */
  brokers(): Iterable<BrokerInstance>;
  /** The broker of a pipeline; `undefined` when there is no such pipeline. */
  brokerOf(pipeline: string): BrokerInstance | undefined;
}

const TaskErrorSchema = z.object({
  message: z.string(),
  name: z.string(),
  permanent: z.boolean(),
  samples: z.array(z.object({ index: z.number().int(), reason: z.string() }))
    .optional().openapi({ description: "Quarantined samples: why each one failed, by index" }),
}).openapi("TaskError");

const TaskRecordSchema = z.object({
  id: z.string(),
  type: z.string(),
  state: z.enum(TASK_STATES as [string, ...string[]]),
  attempts: z.number().int(),
  priority: z.enum(PRIORITIES),
  created_at: z.number(),
  updated_at: z.number(),
  pipeline: z.string().optional(),
  worker: z.string().optional(),
  due_at: z.number().optional(),
  last_error: TaskErrorSchema.optional(),
  completed_at: z.number().optional(),
  dead_lettered_at: z.number().optional(),
}).openapi("TaskRecord");

const DeadLetterSchema = z.object({
  task: z.object({
    id: z.string(),
    type: z.string(),
    payload: z.unknown(),
    attempts: z.number().int(),
    created_at: z.number(),
    priority: z.enum(PRIORITIES).optional(),
    pipeline: z.string().optional(),
    checked: z.boolean().optional(),
  }).openapi("Task"),
  error: TaskErrorSchema,
  attempts: z.number().int(),
  dead_lettered_at: z.number(),
  raw: z.string().optional().openapi({ description: "The message when it could not be decoded" }),
  raw_base64: z.string().optional().openapi({ description: "The same, when not UTF-8" }),
}).openapi("DeadLetter");

/** The body of `POST /dlq/replay`; one of its fields is required. */
const SelectorSchema = z.object({
  ids: z.array(z.string()).optional(),
  type: z.string().optional(),
  pipeline: z.string().optional(),
  all: z.boolean().optional(),
}).openapi("Selector", { description: 'Which dead letters: "ids", "type", "pipeline" or "all"' });

const selectorQuery = {
  pipeline: optionalText("Pipeline (required when several brokers run)"),
  type: optionalText("Task type"),
  ids: optionalText("Comma-separated task ids"),
};

const unknownPipeline = problemResponse("Unknown pipeline");
const notBrowsable = problemResponse("The broker does not list, replay or purge dead letters");

const getTask = createRoute({
  method: "get",
  path: "/tasks/{id}",
  operationId: "getTask",
  summary: "A task's state record while the broker retains it",
  tags: ["dead letters"],
  request: { params: z.object({ id: z.string().openapi({ description: "Task id" }) }) },
  responses: {
    200: json(TaskRecordSchema, "The record"),
    404: problemResponse("No such task is retained"),
    501: problemResponse("No broker of this process keeps task records"),
  },
});

const listDeadLetters = createRoute({
  method: "get",
  path: "/dlq",
  operationId: "listDeadLetters",
  summary: "Dead letters with error and attempts, oldest first, paginated",
  tags: ["dead letters"],
  request: {
    query: z.object({
      ...selectorQuery,
      limit: z.string().regex(/^\d+$/, "must be an integer from 1 to 1000").optional().openapi({
        description: "Page size, 1 to 1000 (default 100)",
        example: "100",
      }),
      cursor: optionalText("Cursor from the previous page"),
    }),
  },
  responses: {
    200: json(
      z.object({
        items: z.array(DeadLetterSchema),
        cursor: z.string().optional().openapi({ description: "Absent on the last page" }),
      }).openapi("DeadLetterPage"),
      "A page",
    ),
    400: problemResponse("Invalid limit or cursor, or no pipeline named where several run"),
    404: unknownPipeline,
    501: notBrowsable,
  },
});

const replayDeadLetters = createRoute({
  method: "post",
  path: "/dlq/replay",
  operationId: "replayDeadLetters",
  summary: "Put dead letters back in the queue, attempts reset",
  description: 'Body `{"ids": [...]}`, `{"type": "..."}`, `{"pipeline": "..."}` or ' +
    '`{"all": true}`.',
  tags: ["dead letters"],
  request: {
    body: {
      required: true,
      // Described, checked by the handler (a $ref is not validated twice).
      content: { "application/json": { schema: { $ref: "#/components/schemas/Selector" } } },
    },
  },
  responses: {
    200: json(z.object({ replayed: z.number().int() }), "How many were replayed"),
    400: problemResponse("Malformed body or selector"),
    404: unknownPipeline,
    413: problemResponse("Body over admin.max_body"),
    415: problemResponse("Not application/json"),
    501: notBrowsable,
  },
});

const purgeDeadLetters = createRoute({
  method: "delete",
  path: "/dlq",
  operationId: "purgeDeadLetters",
  summary: "Purge dead letters (a selector is required)",
  description: "`?ids=`, `?type=`, `?pipeline=` or `?all=true`.",
  tags: ["dead letters"],
  request: {
    query: z.object({
      ...selectorQuery,
      all: z.enum(["true", "false"]).optional().openapi({ description: "Purge everything" }),
    }),
  },
  responses: {
    200: json(z.object({ purged: z.number().int() }), "How many were purged"),
    400: problemResponse("No selector, or no pipeline named where several run"),
    404: unknownPipeline,
    501: notBrowsable,
  },
});

/** The routes, relative to `/api/v1`. */
export function deadLetterRoutes(
  desk: DeadLetterDesk,
  { maxBody }: { maxBody: number },
): OpenAPIHono {
  const routes = new OpenAPIHono({ defaultHook: invalidRequest("Invalid request") });
  routes.openAPIRegistry.register("Selector", SelectorSchema);
  const limit = bodyLimit(maxBody);

  routes.openapi(getTask, async (c) => {
    const { id } = c.req.valid("param");
    let keeping = 0;
    for (const broker of desk.brokers()) {
      if (!hasCapability(broker, "taskRecords")) continue;
      keeping++;
      const record = await broker.getTask(id);
      if (record) return c.json(record, 200);
    }
    if (keeping === 0) {
      return problem(c, 501, "No task records", "No broker of this process keeps task records");
    }
    return problem(c, 404, "Unknown task", `No task "${id}" is retained`);
  });

  routes.openapi(
    listDeadLetters,
    async (c) => {
      const query = c.req.valid("query");
      const picked = pickBroker(c, desk);
      if (picked instanceof Response) return picked;
      const limitValue = Number(query.limit ?? "100");
      if (!Number.isInteger(limitValue) || limitValue < 1 || limitValue > 1000) {
        return problem(c, 400, "Invalid limit", `"limit" must be an integer from 1 to 1000`);
      }
      const selector = selectorFrom(query.ids, query.type, query.pipeline);
      const cursor = query.cursor;
      let page;
      try {
        page = await picked.listDeadLetters({
          ...selector,
          limit: limitValue,
          ...(cursor ? { cursor } : {}),
        });
      } catch (error) {
        // Cursors are opaque and each broker checks its own (RangeError, by the contract).
        if (cursor && error instanceof RangeError) {
          return problem(c, 400, "Invalid cursor", "Give a cursor from a previous page, or none");
        }
        throw error;
      }
      return c.json(page, 200);
    },
    invalidRequest("Invalid limit"),
  );

  routes.openapi(
    { ...replayDeadLetters, middleware: [accepts(["application/json"]), limit] as const },
    async (c) => {
      const body = await jsonBody(c);
      if (body instanceof Response) return body;
      const picked = pickBroker(c, desk, stringField(body, "pipeline"));
      if (picked instanceof Response) return picked;
      const selector = bodySelector(c, body);
      if (selector instanceof Response) return selector;
      return c.json({ replayed: await picked.replayDeadLetters(selector) }, 200);
    },
  );

  routes.openapi(purgeDeadLetters, async (c) => {
    const query = c.req.valid("query");
    const picked = pickBroker(c, desk);
    if (picked instanceof Response) return picked;
    const selector = selectorFrom(query.ids, query.type, query.pipeline);
    if (query.all !== "true" && Object.keys(selector).length === 0) {
      return problem(c, 400, "No selector", "Give ids=, type=, pipeline= or all=true");
    }
    return c.json({ purged: await picked.purgeDeadLetters(selector) }, 200);
  });

  return routes;
}

function selectorFrom(
  ids: string | undefined,
  type: string | undefined,
  pipeline: string | undefined,
): DeadLetterSelector {
  const selector: DeadLetterSelector = {};
  if (ids) selector.ids = ids.split(",").map((s) => s.trim()).filter(Boolean);
  if (type) selector.type = type;
  if (pipeline) selector.pipeline = pipeline;
  return selector;
}

/** The broker whose dead letters a request means, or the problem response. */
function pickBroker(
  c: Context,
  desk: DeadLetterDesk,
  pipeline?: string,
): DeadLetterBrowsing | ProblemResponse<400 | 404 | 501> {
  const name = pipeline ?? c.req.query("pipeline");
  let broker: BrokerInstance | undefined;
  if (name !== undefined && name !== "") {
    broker = desk.brokerOf(name);
    if (!broker) return problem(c, 404, "Unknown pipeline", `No pipeline "${name}"`);
  } else {
    const brokers = [...desk.brokers()];
    if (brokers.length !== 1) {
      return problem(
        c,
        400,
        "Pipeline required",
        "This process has several brokers; name one with ?pipeline=",
      );
    }
    broker = brokers[0]!;
  }
  if (!hasCapability(broker, "deadLetterBrowsing")) {
    const which = name ? `of pipeline "${name}"` : "of this process";
    return problem(
      c,
      501,
      "Dead letters cannot be browsed",
      `The broker ${which} does not list, replay or purge dead letters`,
    );
  }
  return broker;
}

async function jsonBody(c: Context): Promise<Record<string, unknown> | ProblemResponse<400>> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return problem(c, 400, "Malformed body", "Body must be a JSON object");
    }
    return value as Record<string, unknown>;
  } catch (error) {
    return problem(c, 400, "Malformed body", `Body is not valid JSON: ${(error as Error).message}`);
  }
}

function stringField(body: Record<string, unknown>, key: string): string | undefined {
  return typeof body[key] === "string" ? body[key] as string : undefined;
}

function bodySelector(
  c: Context,
  body: Record<string, unknown>,
): DeadLetterSelector | ProblemResponse<400> {
  const selector: DeadLetterSelector = {};
  if (body.ids !== undefined) {
    if (!Array.isArray(body.ids) || !body.ids.every((x) => typeof x === "string")) {
      return problem(c, 400, "Invalid selector", '"ids" must be an array of strings');
    }
    selector.ids = body.ids as string[];
  }
  for (const key of ["type", "pipeline"] as const) {
    if (body[key] !== undefined) {
      if (typeof body[key] !== "string") {
        return problem(c, 400, "Invalid selector", `"${key}" must be a string`);
      }
      selector[key] = body[key] as string;
    }
  }
  if (Object.keys(selector).length === 0 && body.all !== true) {
    return problem(c, 400, "No selector", 'Give "ids", "type", "pipeline" or "all": true');
  }
  return selector;
}

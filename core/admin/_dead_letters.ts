/**
 * Task records and the dead-letter workbench (`/api/v1/tasks/:id`,
 * `/api/v1/dlq`, replay and purge), mounted under `/api/v1`.
 *
 * @module
 */
import { type Context, Hono } from "@hono/hono";
import {
  type BrokerInstance,
  type DeadLetterBrowsing,
  type DeadLetterSelector,
  hasCapability,
} from "../broker.ts";
import { bodyLimit } from "./_body.ts";
import { accepts } from "./_guard.ts";
import { problem } from "./_problem.ts";

/** What these routes need from the runtime. */
export interface DeadLetterDesk {
  /** Every broker of the process. */
  brokers(): Iterable<BrokerInstance>;
  /** The broker of a pipeline; `undefined` when there is no such pipeline. */
  brokerOf(pipeline: string): BrokerInstance | undefined;
}

/** The routes, relative to `/api/v1`. */
export function deadLetterRoutes(desk: DeadLetterDesk, { maxBody }: { maxBody: number }): Hono {
  const routes = new Hono();
  const limit = bodyLimit(maxBody);

  routes.get("/tasks/:id", async (c) => {
    const id = c.req.param("id");
    let keeping = 0;
    for (const broker of desk.brokers()) {
      if (!hasCapability(broker, "taskRecords")) continue;
      keeping++;
      const record = await broker.getTask(id);
      if (record) return c.json(record);
    }
    if (keeping === 0) {
      return problem(c, 501, "No task records", "No broker of this process keeps task records");
    }
    return problem(c, 404, "Unknown task", `No task "${id}" is retained`);
  });

  routes.get("/dlq", async (c) => {
    const picked = pickBroker(c, desk);
    if (picked instanceof Response) return picked;
    const limitText = c.req.query("limit") ?? "100";
    const limitValue = Number(limitText);
    if (!Number.isInteger(limitValue) || limitValue < 1 || limitValue > 1000) {
      return problem(c, 400, "Invalid limit", `"limit" must be an integer from 1 to 1000`);
    }
    const selector = selectorFrom(c.req.query("ids"), c.req.query("type"), c.req.query("pipeline"));
    const cursor = c.req.query("cursor");
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
    return c.json(page);
  });

  routes.post("/dlq/replay", accepts(["application/json"]), limit, async (c) => {
    const body = await jsonBody(c);
    if (body instanceof Response) return body;
    const picked = pickBroker(c, desk, stringField(body, "pipeline"));
    if (picked instanceof Response) return picked;
    const selector = bodySelector(c, body);
    if (selector instanceof Response) return selector;
    return c.json({ replayed: await picked.replayDeadLetters(selector) });
  });

  routes.delete("/dlq", async (c) => {
    const picked = pickBroker(c, desk);
    if (picked instanceof Response) return picked;
    const all = c.req.query("all") === "true";
    const selector = selectorFrom(c.req.query("ids"), c.req.query("type"), c.req.query("pipeline"));
    if (!all && Object.keys(selector).length === 0) {
      return problem(c, 400, "No selector", "Give ids=, type=, pipeline= or all=true");
    }
    return c.json({ purged: await picked.purgeDeadLetters(selector) });
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
): DeadLetterBrowsing | Response {
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

async function jsonBody(c: Context): Promise<Record<string, unknown> | Response> {
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

function bodySelector(c: Context, body: Record<string, unknown>): DeadLetterSelector | Response {
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

/**
 * The live tap (`GET /api/v1/tap`): samples as Server-Sent Events, filtered
 * on the server and rate-capped per client.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { streamSSE } from "@hono/hono/streaming";
import { redactText } from "../redact.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { handlerNames } from "../runtime/_reload.ts";
import type { TapFilter, TapStage } from "../runtime/tap.ts";
import { problem } from "./_problem.ts";
import { invalidRequest, optionalText, problemResponse } from "./openapi.ts";

const tap = createRoute({
  method: "get",
  path: "/api/v1/tap",
  operationId: "tap",
  summary: "Live samples at any stage, as Server-Sent Events, filtered and rate-capped",
  description: "Stages: `input` (default: samples as they enter the hub, before any handler), " +
    "`handler` with `handler=<name>` (what that handler passed on, after it ran), " +
    "`dead_letters` (samples as they are dead-lettered or quarantined, with the reason). " +
    "First `event: ready` (data `{filter}`), then `event: samples` with data " +
    "`{stage, samples, skipped}` (and `reason` at dead_letters): at most admin.tap_rate samples " +
    "per second, `skipped` counting those left out since the previous event. A comment line " +
    "every 15 s keeps proxies from closing an idle stream.",
  tags: ["data"],
  request: {
    query: z.object({
      pipeline: optionalText("Pipeline (default: every pipeline)"),
      stage: z.enum(["input", "handler", "dead_letters"]).optional().openapi({
        description: "Where to tap (default input; handler when `handler` is given)",
      }),
      handler: optionalText("The handler whose output to tap (stage handler)"),
      device: optionalText("Device name or glob (`*` any run, `?` one character)"),
      metric: optionalText("Metric name or glob"),
    }),
  },
  responses: {
    200: {
      description: "The stream",
      content: { "text/event-stream": { schema: z.string() } },
    },
    400: problemResponse("Malformed parameters, or a stage and handler that disagree"),
    404: problemResponse("Unknown pipeline or stage, or one this process does not run"),
  },
});

/** The routes, mounted at the root. */
export function tapRoutes(
  runtime: Runtime,
  { rate, secrets }: { rate: number; secrets: ReadonlySet<string> },
): OpenAPIHono {
  const routes = new OpenAPIHono({ defaultHook: invalidRequest("Invalid tap") });

  routes.openapi(tap, (c) => {
    const query = c.req.valid("query");
    const stage = pickStage(runtime, query);
    if (stage.problem) return problem(c, stage.problem[0], stage.problem[1], stage.problem[2]);
    const filter: TapFilter = {
      ...(query.pipeline ? { pipeline: query.pipeline } : {}),
      stage: stage.stage,
      ...(query.device ? { device: query.device } : {}),
      ...(query.metric ? { metric: query.metric } : {}),
    };
    return streamSSE(c, async (stream) => {
      let queue = Promise.resolve();
      const off = runtime.tap.subscribe(filter, rate, (samples, skipped, reason) => {
        const event = { stage: filter.stage, samples, skipped, ...(reason ? { reason } : {}) };
        queue = queue.then(() =>
          stream.writeSSE({
            event: "samples",
            data: redactText(JSON.stringify(event), secrets),
          })
        ).catch(() => off());
      });
      stream.onAbort(off);
      try {
        await stream.writeSSE({
          event: "ready",
          data: redactText(JSON.stringify({ filter }), secrets),
        });
        while (!stream.aborted && !stream.closed && runtime.state !== "stopped") {
          await stream.sleep(15_000);
          // A comment line keeps proxies from closing an idle stream.
          if (!stream.aborted) await stream.write(": keep-alive\n\n");
        }
      } finally {
        off();
      }
    });
  });

  return routes;
}

/**
 * The stage a tap request means, or why there is none: a stage must exist
 * in the pipeline named (or in one of them) and run in this process (the
 * input in a hub, handlers and dead letters in a processor).
 */
function pickStage(
  runtime: Runtime,
  query: {
    pipeline?: string | undefined;
    stage?: string | undefined;
    handler?: string | undefined;
  },
): { stage: TapStage; problem?: undefined } | { problem: [400 | 404, string, string] } {
  const { handler } = query;
  const kind = query.stage ?? (handler ? "handler" : "input");
  if (kind === "handler" && !handler) {
    return { problem: [400, "Invalid tap", 'Stage "handler" needs handler=<name>'] };
  }
  if (handler && kind !== "handler") {
    return { problem: [400, "Invalid tap", `handler= taps stage "handler", not "${kind}"`] };
  }
  const named = query.pipeline;
  const pipelines = named === undefined || named === ""
    ? [...runtime.pipelines.values()]
    : [runtime.pipelines.get(named)].filter((p) => p !== undefined);
  if (pipelines.length === 0 && named) {
    return { problem: [404, "Unknown pipeline", `No pipeline "${named}" runs in this process`] };
  }
  const where = named ? `pipeline "${named}"` : "any pipeline of this process";
  if (kind === "input") {
    if (!pipelines.some((p) => p.queue)) {
      return { problem: [404, "Unknown stage", `No hub of ${where} runs here (role processor)`] };
    }
    return { stage: "input" };
  }
  const processing = pipelines.filter((p) => p.pool);
  if (processing.length === 0) {
    return { problem: [404, "Unknown stage", `No worker of ${where} runs here (role hub)`] };
  }
  if (kind === "dead_letters") return { stage: "dead_letters" };
  const known = processing.some((p) => {
    const config = runtime.config.pipelines[p.name];
    return config !== undefined && handlerNames(config).includes(handler!);
  });
  if (!known) {
    return { problem: [404, "Unknown stage", `No handler "${handler}" in ${where}`] };
  }
  return { stage: `handler:${handler}` };
}

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
import type { TapFilter } from "../runtime/tap.ts";
import { invalidRequest, optionalText } from "./openapi.ts";

const tap = createRoute({
  method: "get",
  path: "/api/v1/tap",
  operationId: "tap",
  summary: "Live samples as Server-Sent Events, filtered and rate-capped",
  description: "First `event: ready` (data `{filter}`), then `event: samples` with data " +
    "`{samples, skipped}`: at most admin.tap_rate samples per second, `skipped` counting those " +
    "left out since the previous event. A comment line every 15 s keeps proxies from closing " +
    "an idle stream.",
  tags: ["data"],
  request: {
    query: z.object({
      pipeline: optionalText("Pipeline"),
      device: optionalText("Device"),
      metric: optionalText("Metric"),
    }),
  },
  responses: {
    200: {
      description: "The stream",
      content: { "text/event-stream": { schema: z.string() } },
    },
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
    const filter: TapFilter = {
      ...(query.pipeline ? { pipeline: query.pipeline } : {}),
      ...(query.device ? { device: query.device } : {}),
      ...(query.metric ? { metric: query.metric } : {}),
    };
    return streamSSE(c, async (stream) => {
      let queue = Promise.resolve();
      const off = runtime.tap.subscribe(filter, rate, (samples, skipped) => {
        queue = queue.then(() =>
          stream.writeSSE({
            event: "samples",
            data: redactText(JSON.stringify({ samples, skipped }), secrets),
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

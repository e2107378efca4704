import assert from "node:assert/strict";
import { ownDiagnostics, parseDocLint } from "./doc_lint.ts";

// What `NO_COLOR=1 deno doc --lint` prints (Deno 2.9), shortened: one problem
// of ours, one inside zod, one private type of ours and one of zod's.
const OUTPUT = `error[missing-jsdoc]: exported symbol is missing JSDoc documentation
  --> /repo/core/broker.ts:16:3
   | 
16 |   task: Task;
   |   ^


error[missing-jsdoc]: exported symbol is missing JSDoc documentation
    --> /root/.cache/deno/npm/registry.npmjs.org/zod/4.6.7/v4/core/schemas.d.ts:12:5
     | 
  12 |     kind: string;
     |     ^


error[private-type-ref]: public type 'LoggerOptions["sink"]' references private type 'LogSink'
  --> /repo/core/log.ts:36:3
   | 
36 |   sink?: LogSink;
   |   ^
   = hint: make the referenced type public or remove the reference
   | 
30 | export type LogSink = (line: string, level: LogLevel) => void;
   | - this is the referenced type
   | 

  info: to ensure documentation is complete all types that are exposed in the public API must be public


error[private-type-ref]: public type 'priority' references private type 'ZodEnum'
   --> /repo/core/schema.ts:91:1
    | 
 91 | export function priority(): z.ZodEnum<{ high: "high" }> {
    | ^
    = hint: make the referenced type public or remove the reference
    | 
600 | export interface ZodEnum<
    | - this is the referenced type
    | 

  info: to ensure documentation is complete all types that are exposed in the public API must be public


error: Found 4 documentation lint errors.

Stack backtrace:
   0: <unknown>
`;

const LOG_TS = Array.from({ length: 40 }, () => "");
LOG_TS[29] = "export type LogSink = (line: string, level: LogLevel) => void;";

Deno.test("parseDocLint() reads every diagnostic with its location and the count deno reports", () => {
  const { diagnostics, found } = parseDocLint(OUTPUT);
  assert.equal(found, 4);
  assert.deepEqual(
    diagnostics.map((d) => [d.code, d.file, d.line]),
    [
      ["missing-jsdoc", "/repo/core/broker.ts", 16],
      [
        "missing-jsdoc",
        "/root/.cache/deno/npm/registry.npmjs.org/zod/4.6.7/v4/core/schemas.d.ts",
        12,
      ],
      ["private-type-ref", "/repo/core/log.ts", 36],
      ["private-type-ref", "/repo/core/schema.ts", 91],
    ],
  );
  assert.deepEqual(diagnostics[2]!.referenced, {
    line: 30,
    text: "export type LogSink = (line: string, level: LogLevel) => void;",
  });
  assert.match(diagnostics[0]!.text, /task: Task;/);
  assert.doesNotMatch(diagnostics[3]!.text, /Found 4/);
});

Deno.test("parseDocLint() of a clean run finds nothing", () => {
  assert.deepEqual(parseDocLint(""), { diagnostics: [], found: 0 });
});

Deno.test("ownDiagnostics() keeps problems in the repository and private types declared in it", () => {
  const { diagnostics } = parseDocLint(OUTPUT);
  const own = ownDiagnostics(diagnostics, "/repo", new Map([["/repo/core/log.ts", LOG_TS]]));
  assert.deepEqual(own.map((d) => `${d.file}:${d.line}`), [
    "/repo/core/broker.ts:16",
    "/repo/core/log.ts:36",
  ]);
});

Deno.test("ownDiagnostics() keeps a private-type-ref whose referenced type it cannot read", () => {
  const { diagnostics } = parseDocLint(OUTPUT);
  const { referenced: _, ...unread } = diagnostics[3]!;
  assert.equal(ownDiagnostics([unread], "/repo", new Map()).length, 1);
});

Deno.test("ownDiagnostics() does not take a sibling folder for the repository", () => {
  const { diagnostics } = parseDocLint(OUTPUT);
  assert.deepEqual(ownDiagnostics(diagnostics, "/repo/core/broker", new Map()), []);
});

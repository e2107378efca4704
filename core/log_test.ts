import assert from "node:assert/strict";
import { createLogger, type LogLevel } from "./log.ts";

function capture(options: Parameters<typeof createLogger>[0] = {}) {
  const lines: Array<{ line: string; level: LogLevel }> = [];
  const logger = createLogger({ sink: (line, level) => lines.push({ line, level }), ...options });
  return { logger, lines };
}

Deno.test("JSON logs are one object per line with time, level, message and fields", () => {
  const { logger, lines } = capture({ format: "json", clock: () => 0 });
  logger.child({ device: "boiler" }).info("Device up", { attempt: 2 });
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]!.line), {
    time: "1970-01-01T00:00:00.000Z",
    level: "info",
    msg: "Device up",
    device: "boiler",
    attempt: 2,
  });
});

Deno.test("pretty logs are readable key=value lines", () => {
  const { logger, lines } = capture({ format: "pretty", clock: () => 0 });
  logger.warn("Device down", { device: "boiler 1", error: new Error("ENOENT") });
  assert.equal(lines[0]!.line, '00:00:00.000 WARN  Device down device="boiler 1" error="ENOENT"');
});

Deno.test("lines below the level are dropped", () => {
  const { logger, lines } = capture({ format: "json", level: "warn" });
  logger.debug("a");
  logger.info("b");
  logger.warn("c");
  logger.error("d");
  assert.deepEqual(lines.map((l) => l.level), ["warn", "error"]);
});

Deno.test("secret values never reach a log line", () => {
  const secrets = new Set(["s3cr3t-token", "hunter22"]);
  for (const format of ["json", "pretty"] as const) {
    const { logger, lines } = capture({ format, secrets });
    logger.error("Auth failed for redis://app:hunter22@db", { header: "Bearer s3cr3t-token" });
    assert.ok(!lines[0]!.line.includes("hunter22"), lines[0]!.line);
    assert.ok(!lines[0]!.line.includes("s3cr3t-token"), lines[0]!.line);
    assert.match(lines[0]!.line, /\*\*\*/);
  }
});

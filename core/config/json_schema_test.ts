import assert from "node:assert/strict";
import { definePlugin, z } from "../mod.ts";
import { PluginRegistry } from "../registry.ts";
import { fixtureRegistry } from "../../tests/config_cases/_fixtures.ts";
import { configJsonSchema } from "./json_schema.ts";

// deno-lint-ignore no-explicit-any -- assertions walk arbitrary JSON Schema; a typo just fails the test
type Json = Record<string, any>;

function componentSchema(schema: Json, section: string): Json {
  return schema.properties[section].additionalProperties;
}

function variant(schema: Json, section: string, type: string): Json {
  const found = componentSchema(schema, section).allOf.find((v: Json) =>
    v.if.properties.type.const === type
  );
  assert.ok(found, `no variant for ${section} type ${type}`);
  return found;
}

Deno.test("configJsonSchema() is a draft 2020-12 schema of the core keys with descriptions", () => {
  const schema = configJsonSchema(new PluginRegistry()) as Json;
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.equal(schema.type, "object");
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.properties.role.anyOf[0].enum, ["all", "hub", "processor"]);
  const pipeline = schema.properties.pipelines.additionalProperties;
  assert.equal(pipeline.properties.workers.anyOf[0].type, "integer");
  assert.equal(pipeline.properties.workers.description, "Concurrent workers processing tasks");
  // Input side: fields with defaults are optional, `via` is required.
  assert.deepEqual(pipeline.required, ["via"]);
});

Deno.test("configJsonSchema() gives each plugin type its config schema, descriptions kept", () => {
  const schema = configJsonSchema(fixtureRegistry()) as Json;
  const device = componentSchema(schema, "devices");
  assert.deepEqual(device.properties.type.anyOf[0].enum, ["serial", "simulated"]);

  const simulated = variant(schema, "devices", "simulated");
  assert.deepEqual(simulated.if.required, ["type"]);
  const config = simulated.then.properties.config;
  assert.equal(config.additionalProperties, false);
  assert.equal(config.properties.rate.anyOf[0].type, "integer");
  assert.equal(config.properties.rate.description, "Readings per second");
  assert.deepEqual(config.properties.metrics.items.anyOf[0].enum, [
    "temperature",
    "pressure",
    "humidity",
  ]);
  assert.equal(config.description, "Generates fake readings");

  const digest = variant(schema, "handlers", "digest").then.properties.config;
  assert.equal(digest.properties.interval.description, "How often a digest is written");
  assert.equal(digest.properties.interval.default, "1m");
  assert.deepEqual(variant(schema, "brokers", "memory").then.properties.config.properties, {});
});

Deno.test("configJsonSchema() hoists a recursive plugin schema's definitions to the root", () => {
  interface Rule {
    name: string;
    children?: Rule[] | undefined;
  }
  const rule: z.ZodType<Rule> = z.lazy(() =>
    z.strictObject({ name: z.string(), children: z.array(rule).optional() })
  );
  const tree = definePlugin({
    name: "tree",
    kind: "handler",
    summary: "Rules in a tree",
    config: z.strictObject({ root: rule.describe("Top rule") }),
    create: () => ({ handle() {} }),
  });
  const schema = configJsonSchema(PluginRegistry.of([tree])) as Json;
  const text = JSON.stringify(schema);
  assert.ok(text.includes('"$ref"'));
  for (const [, ref] of text.matchAll(/"\$ref":"([^"]+)"/g)) {
    assert.match(ref!, /^#\/\$defs\//);
    const name = decodeURIComponent(ref!.slice("#/$defs/".length));
    assert.ok(schema.$defs?.[name], `dangling reference ${ref}`);
  }
});

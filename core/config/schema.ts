/**
 * The core shape of `telemetry.yaml`. Each component (device, broker,
 * handler) has core keys beside a nested `config:` that belongs wholly to
 * its plugin's schema, validated separately once `type:` is known.
 *
 * @module
 */
import { duration, priority, z } from "../schema.ts";
import { LOG_LEVELS } from "../log.ts";

/** Names of components and pipelines. */
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const componentName = z.string().regex(NAME, {
  error: "Names start with a letter or _ and contain letters, digits, _, . or -",
});

/** Roles a process can take. */
export const ROLES = ["all", "hub", "processor"] as const;
/** A process role. */
export type Role = (typeof ROLES)[number];

/** Overflow policies of a hub queue. */
/** What a bearer token of the admin API may do. */
export const TOKEN_SCOPES = ["ingest", "read", "admin", "metrics"] as const;
/** A token scope. */
export type TokenScope = (typeof TOKEN_SCOPES)[number];

export const OVERFLOW_POLICIES = ["block", "drop_oldest", "drop_newest"] as const;

const pluginType = z.string().min(1).describe(
  "Plugin that implements this component (see `deno task plugins`)",
);
const pluginConfig = z
  .record(z.string(), z.unknown())
  .prefault({})
  .describe("Settings owned by the plugin; checked against the plugin's own schema");

/** A `devices.<name>` block. */
export const deviceSchema = z.strictObject({
  type: pluginType,
  priority: priority().optional().describe(
    "Priority of this device's tasks; overrides the pipeline's",
  ),
  tags: z.record(z.string(), z.string()).optional().describe(
    "Tags added to every sample of this device",
  ),
  config: pluginConfig,
});

/** A `brokers.<name>` block. */
export const brokerSchema = z.strictObject({
  type: pluginType,
  config: pluginConfig,
});

/** A `handlers.<name>` block. */
export const handlerSchema = z.strictObject({
  type: pluginType,
  config: pluginConfig,
});

/** Retry policy of a pipeline. */
export const retrySchema = z.strictObject({
  max_attempts: z.int().min(1).max(1000).default(5).describe(
    "Attempts per task including the first; then the task is dead-lettered",
  ),
  delay: duration({ timer: true }).prefault("500ms").describe("Delay before the first retry"),
  max: duration({ timer: true }).prefault("30s").describe("Longest delay between attempts"),
  factor: z.number().min(1).max(10).default(2).describe("Growth of the delay per attempt"),
  jitter: z.number().min(0).max(1).default(0.2).describe(
    "Fraction of each delay randomized (0.2 = ±20%)",
  ),
});

/** A `pipelines.<name>` block. */
export const pipelineSchema = z.strictObject({
  from: z.array(componentName).default([]).describe("Devices feeding this pipeline"),
  via: componentName.describe("Broker carrying this pipeline's tasks"),
  task_type: z.string().min(1).default("telemetry.analyze").describe(
    "Type of the tasks the gateway creates",
  ),
  handlers: z.array(componentName).default([]).describe(
    "Handler chain for `task_type`, run in order",
  ),
  routes: z.record(z.string().min(1), z.array(componentName)).default({}).describe(
    "Handler chains for other task types arriving through the same broker",
  ),
  priority: priority().default("normal").describe("Priority of this pipeline's tasks"),
  batch: z.strictObject({
    max_samples: z.int().min(1).max(1_000_000).default(1000).describe(
      "Most samples per task",
    ),
    max_wait: duration({ timer: true }).prefault("50ms").describe(
      "Longest a sample waits in the gateway before its task is sent",
    ),
  }).prefault({}).describe("How the gateway batches samples into tasks"),
  hub_queue: z.strictObject({
    capacity: z.int().min(1).default(100_000).describe("Samples the hub queue holds"),
    overflow: z.enum(OVERFLOW_POLICIES).default("block").describe(
      "When full: block (push back on devices), drop_oldest or drop_newest",
    ),
  }).prefault({}).describe("Bounded queue between devices and the gateway"),
  workers: z.int().min(1).max(1024).default(2).describe("Concurrent workers processing tasks"),
  prefetch: z.int().min(1).max(10_000).default(4).describe(
    "Tasks a worker reserves at once",
  ),
  retry: retrySchema.prefault({}).describe("Retry policy for failed tasks"),
});

/** A sample as a config test writes it: `ts` may be left out. */
const testSampleSchema = z.strictObject({
  device: z.string().min(1).describe("Device name"),
  metric: z.string().min(1).describe("Metric name"),
  value: z.number().describe("The reading"),
  ts: z.number().optional().describe(
    "Milliseconds since the epoch; default: 2023-11-14T22:13:20Z plus one second per sample",
  ),
  unit: z.string().optional().describe("Unit of the value"),
  seq: z.int().optional().describe("Sequence number"),
  tags: z.record(z.string(), z.string()).optional().describe("Tags"),
  quality: z.enum(["good", "bad"]).optional().describe("Data quality"),
});

/** What a config test expects of an item: the listed fields only. */
const expectedItem = z.record(z.string(), z.unknown());

/** A `tests[]` item: samples through some handlers, and what must come out. */
export const configTestSchema = z.strictObject({
  name: z.string().min(1).describe("What the test checks, shown in the results"),
  handlers: z.array(componentName).min(1).optional().describe(
    "Handlers to run, in order, as configured above (a pipeline's chain or part of it); " +
      "they are really created, so leave out ones that write where you do not want test data",
  ),
  pipeline: componentName.optional().describe(
    "Run this pipeline's whole handler chain instead of listing handlers",
  ),
  input: z.array(testSampleSchema).min(1).describe("Samples given to the first handler"),
  expect: z.array(expectedItem).optional().describe(
    "Samples that must come out of the last handler, in order; each lists only the fields " +
      "it checks (numbers equal within 1e-9 relative)",
  ),
  expect_published: z.record(z.string(), z.array(expectedItem)).optional().describe(
    "Items the handlers must publish to later ones, by topic, in order, e.g. " +
      "anomaly: [{ rule: zscore, device: boiler }]; fields checked as in expect",
  ),
  expect_error: z.string().min(1).optional().describe(
    "The chain must fail with an error whose message contains this text",
  ),
}).refine((t) => (t.handlers === undefined) !== (t.pipeline === undefined), {
  error: "Give either handlers or pipeline",
});

/** The whole file, before plugin configs are checked. */
export const configSchema = z.strictObject({
  role: z.enum(ROLES).default("all").describe(
    "all runs everything; hub runs devices and gateway; processor runs workers and handlers",
  ),
  log: z.strictObject({
    level: z.enum(LOG_LEVELS).default("info").describe("Least severe level printed"),
    format: z.enum(["auto", "json", "pretty"]).default("auto").describe(
      "auto: readable lines on a terminal, JSON lines otherwise",
    ),
  }).prefault({}).describe("Logging"),
  plugins: z.array(z.string().min(1)).default([]).describe(
    "Third-party plugin modules: relative path, file: or https: URL, or npm: specifier",
  ),
  admin: z.strictObject({
    enabled: z.boolean().default(true).describe("Serve the admin API"),
    listen: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, {
      error: 'Expected "host:port", e.g. "127.0.0.1:8080" (port 0 picks a free one)',
    }).superRefine((value, ctx) => {
      const port = Number(/:(\d{1,5})$/.exec(value)?.[1]);
      if (port > 65535) {
        ctx.addIssue({
          code: "custom",
          input: value,
          message: `Port ${port} is out of range; expected 0 to 65535 (0 picks a free one)`,
        });
      }
    }).default("127.0.0.1:8080").describe(
      "host:port the admin API binds to; keep it on loopback unless a token is set",
    ),
    token: z.string().optional().describe(
      "Bearer token with every scope (ingest, read, admin, metrics); " +
        "use ${TELEMETRY_ADMIN_TOKEN}",
    ),
    ingest_tokens: z.array(z.string().min(1)).default([]).describe(
      "Extra bearer tokens accepted by POST /api/v1/samples only (scope ingest), so devices " +
        "need not hold the admin token",
    ),
    tokens: z.array(
      z.strictObject({
        token: z.string().min(1).describe("The bearer token; use ${VAR}"),
        scopes: z.array(z.enum(TOKEN_SCOPES)).min(1).describe(
          "ingest: POST /api/v1/samples; read: GET routes and config/validate; admin: " +
            "reload, DLQ replay and purge (implies read); metrics: /metrics when " +
            "admin.metrics_auth is on (read implies it)",
        ),
      }),
    ).default([]).describe("Bearer tokens with scopes"),
    metrics_auth: z.boolean().default(false).describe(
      "Require a token with the metrics, read or admin scope on GET /metrics",
    ),
    allowed_hosts: z.array(z.string().min(1)).optional().describe(
      "Host header names accepted (DNS-rebinding defence); default: localhost, 127.0.0.1, " +
        '::1 and the host of admin.listen (any host when it listens on 0.0.0.0 or ::); "*" ' +
        "accepts any",
    ),
    allowed_origins: z.array(z.string().min(1)).default([]).describe(
      "Browser origins (e.g. https://console.example) allowed to POST or DELETE; requests " +
        "with any other Origin header are refused",
    ),
    tls: z.strictObject({
      cert_file: z.string().min(1).describe("PEM certificate chain file"),
      key_file: z.string().min(1).describe("PEM private key file"),
    }).optional().describe(
      "Serve the admin API over HTTPS; a reload re-reads renewed certificate files",
    ),
    max_body: z.int().min(1024).default(1_048_576).describe(
      "Largest request body accepted, in bytes (after decompression too); larger bodies get 413",
    ),
    line_protocol: z.strictObject({
      device_tag: z.string().min(1).default("device").describe(
        "Tag whose value names the device; a line without it uses its measurement",
      ),
      metric: z.enum(["field", "measurement_field"]).default("field").describe(
        "Metric name of each numeric field: the field key, or <measurement>_<field>",
      ),
    }).prefault({}).describe(
      "How InfluxDB line protocol (text/plain) posted to /api/v1/samples becomes samples",
    ),
    tap_rate: z.int().min(1).max(100_000).default(50).describe(
      "Most samples per second streamed to one /api/v1/tap client; the rest are skipped " +
        "and counted",
    ),
  }).prefault({}).describe("Admin API"),
  metrics: z.strictObject({
    max_devices: z.int().min(0).max(1_000_000).default(1000).describe(
      "Most unconfigured devices (named by posted data) given their own /metrics series; " +
        'the rest count as device="_other", warned once',
    ),
  }).prefault({}).describe("Prometheus metrics at /metrics"),
  threads: z.union([z.literal("auto"), z.int().min(1).max(256)], {
    error: 'Expected "auto" or a whole number of threads from 1 to 256',
  }).default("auto").describe(
    "Isolates (threads) that run the handler chains of this process, each with its own " +
      "broker consumer and connections; auto: one per core but one (the main isolate also runs " +
      "the hub and admin API, and brokers and databases share the machine). 1 runs everything on the main " +
      "isolate. Pipelines on an in-process broker (memory) or with a handler that holds a " +
      "one-isolate resource (an embedded PGlite database) run on the main isolate only",
  ),
  shutdown: z.strictObject({
    grace: duration({ timer: true }).prefault("10s").describe(
      "How long in-flight tasks may run after a stop signal before they are released",
    ),
  }).prefault({}).describe("Shutdown behaviour"),
  devices: z.record(componentName, deviceSchema).default({}).describe("Sensors and sources"),
  brokers: z.record(componentName, brokerSchema).default({}).describe("Task queues"),
  handlers: z.record(componentName, handlerSchema).default({}).describe("Processing steps"),
  pipelines: z.record(componentName, pipelineSchema).default({}).describe(
    "Devices → broker → handlers wiring",
  ),
  tests: z.array(configTestSchema).default([]).describe(
    "Checks of the handler chains, run by `deno task validate`: samples in, expected out",
  ),
});

/** The file after core validation (plugin configs still raw). */
export type CoreConfig = z.output<typeof configSchema>;
/** One pipeline's settings. */
export type PipelineConfig = z.output<typeof pipelineSchema>;
/** One device block. */
export type DeviceConfig = z.output<typeof deviceSchema>;
/** One broker or handler block. */
export type ComponentConfig = z.output<typeof brokerSchema>;
/** One `tests[]` item. */
export type ConfigTest = z.output<typeof configTestSchema>;

/** The validated file with every plugin config parsed by its plugin's schema. */
export interface ResolvedConfig extends CoreConfig {
  /** Absolute path of the file, or `<input>`. */
  file: string;
}

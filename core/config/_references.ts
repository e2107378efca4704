/**
 * Checks between components: references to devices, brokers, handlers and
 * pipelines, and what `run` would refuse in an otherwise valid file.
 *
 * @module
 */
import type { PluginKind } from "../plugin.ts";
import type { PluginRegistry } from "../registry.ts";
import { isRecord } from "../sample.ts";
import { type AdminConfig, exposureProblem, scopedTokens } from "./admin.ts";
import type { Role } from "./schema.ts";
import { didYouMean, quoteList } from "./suggest.ts";
import type { PathSegment } from "./_path.ts";
import type { Reporter } from "./_positions.ts";

/** Sections of `telemetry.yaml` holding components, with the plugin kind of each. */
export const COMPONENT_SECTIONS = {
  devices: "device",
  brokers: "broker",
  handlers: "handler",
} as const satisfies Record<string, PluginKind>;

/** A section of `telemetry.yaml` holding components. */
export type Section = keyof typeof COMPONENT_SECTIONS;
/** The component sections, in order. */
export const SECTIONS = Object.keys(COMPONENT_SECTIONS) as Section[];

/** Reports references to components that are not defined and devices no pipeline reads. */
export function checkReferences(
  data: Record<string, unknown>,
  report: Reporter,
  skip: (path: PathSegment[]) => boolean,
): void {
  const defined = {
    devices: new Set(entriesOf(data.devices).map(([name]) => name)),
    brokers: new Set(entriesOf(data.brokers).map(([name]) => name)),
    handlers: new Set(entriesOf(data.handlers).map(([name]) => name)),
  };
  const feeds = new Map<string, string>();
  const check = (section: Section, value: unknown, path: PathSegment[]): boolean => {
    if (typeof value !== "string" || skip(path)) return false;
    if (defined[section].has(value)) return true;
    const noun = COMPONENT_SECTIONS[section];
    const names = [...defined[section]].sort();
    const hint = didYouMean(value, names) ||
      (names.length === 0
        ? `; no ${section} are defined`
        : names.length <= 10
        ? `; defined ${section}: ${quoteList(names)}`
        : "");
    report.add(path, `${capitalize(noun)} ${JSON.stringify(value)} is not defined${hint}`);
    return false;
  };

  for (const [pipeline, p] of entriesOf(data.pipelines)) {
    if (!isRecord(p)) continue;
    const base = ["pipelines", pipeline];
    if (Array.isArray(p.from)) {
      p.from.forEach((device, i) => {
        const path = [...base, "from", i];
        if (!check("devices", device, path)) return;
        const name = device as string;
        const first = feeds.get(name);
        if (first === undefined) feeds.set(name, pipeline);
        else if (first === pipeline) {
          report.add(path, `Device ${JSON.stringify(name)} is listed more than once`);
        } else {
          report.add(
            path,
            `Device ${JSON.stringify(name)} already feeds pipeline ${JSON.stringify(first)}; ` +
              "a device feeds at most one pipeline",
          );
        }
      });
    }
    check("brokers", p.via, [...base, "via"]);
    if (Array.isArray(p.handlers)) {
      p.handlers.forEach((h, i) => check("handlers", h, [...base, "handlers", i]));
    }
    for (const [taskType, chain] of entriesOf(p.routes)) {
      if (!Array.isArray(chain)) continue;
      chain.forEach((h, i) => check("handlers", h, [...base, "routes", taskType, i]));
    }
  }
  if (Array.isArray(data.tests)) {
    const pipelines = entriesOf(data.pipelines).map(([name]) => name);
    data.tests.forEach((t, i) => {
      if (!isRecord(t)) return;
      if (Array.isArray(t.handlers)) {
        t.handlers.forEach((h, j) => check("handlers", h, ["tests", i, "handlers", j]));
      }
      const path = ["tests", i, "pipeline"];
      if (typeof t.pipeline === "string" && !pipelines.includes(t.pipeline) && !skip(path)) {
        report.add(
          path,
          `Pipeline ${JSON.stringify(t.pipeline)} is not defined${
            didYouMean(t.pipeline, pipelines) || `; defined pipelines: ${quoteList(pipelines)}`
          }`,
        );
      }
    });
  }

  for (const device of defined.devices) {
    if (!feeds.has(device)) {
      report.warn(
        ["devices", device],
        `Device ${JSON.stringify(device)} is not used by any pipeline`,
        "key",
      );
    }
  }
}

/**
 * What `run` would refuse in a file that is otherwise valid: nothing to run,
 * an admin API reachable beyond loopback without a token, and split roles on
 * a broker whose plugin declares it cannot be shared.
 */
export function checkRunnable(
  data: Record<string, unknown>,
  report: Reporter,
  skip: (path: PathSegment[]) => boolean,
  { registry, role, admin }: {
    registry: PluginRegistry;
    role: Role | undefined;
    admin: AdminConfig | undefined;
  },
): void {
  const exposed = admin ? exposureProblem(admin) : undefined;
  if (exposed && !skip(["admin", "listen"])) report.add(["admin", "listen"], exposed);
  if (
    admin?.enabled && admin.metrics_auth &&
    !scopedTokens(admin).some((t) => t.scopes.has("metrics"))
  ) {
    report.add(
      ["admin", "metrics_auth"],
      "admin.metrics_auth needs a token that may read metrics; set admin.token or give a " +
        'token of admin.tokens the scope "metrics" or "read"',
    );
  }
  const pipelines = entriesOf(data.pipelines);
  if (pipelines.length === 0 && !skip(["pipelines"])) {
    report.add(
      ["pipelines"],
      "Nothing to run: the configuration defines no pipelines; " +
        "add one that reads devices through a broker",
    );
  }
  const brokers = entriesOf(data.brokers);
  warnUnthreaded(data, pipelines, brokers, report, registry, role);
  if (role === undefined || role === "all") return;
  const reported = new Set<string>();
  for (const [, p] of pipelines) {
    if (!isRecord(p) || typeof p.via !== "string" || reported.has(p.via)) continue;
    const block = brokers.find(([name]) => name === p.via)?.[1];
    if (!isRecord(block) || typeof block.type !== "string") continue;
    const typePath = ["brokers", p.via, "type"];
    if (skip(typePath) || registry.get("broker", block.type)?.shared !== false) continue;
    reported.add(p.via);
    report.add(
      typePath,
      `Role ${JSON.stringify(role)} cannot use broker ${JSON.stringify(p.via)} (type ` +
        `${JSON.stringify(block.type)}): it lives inside one process, so a separate hub and ` +
        "processor would never see each other's tasks. Split roles need a shared broker: " +
        'sqlite (processes on one machine) or Redis; use role "all" with this one',
    );
  }
}

/**
 * Warns about each pipeline an explicit `threads:` above 1 cannot spread:
 * its broker lives in one isolate, so its chain runs on the main one only.
 */
function warnUnthreaded(
  data: Record<string, unknown>,
  pipelines: [string, unknown][],
  brokers: [string, unknown][],
  report: Reporter,
  registry: PluginRegistry,
  role: Role | undefined,
): void {
  const threads = data.threads;
  if (typeof threads !== "number" || threads < 2 || (role ?? data.role) === "hub") return;
  for (const [name, p] of pipelines) {
    if (!isRecord(p) || typeof p.via !== "string") continue;
    const block = brokers.find(([broker]) => broker === p.via)?.[1];
    if (!isRecord(block) || typeof block.type !== "string") continue;
    if (registry.get("broker", block.type)?.shared !== false) continue;
    report.warn(
      ["pipelines", name, "via"],
      `threads: ${threads} does not spread pipeline ${JSON.stringify(name)}: its broker ` +
        `${JSON.stringify(p.via)} (type ${JSON.stringify(block.type)}) lives in the main ` +
        "isolate, so its handlers run there only; a sqlite or redis broker can be shared by " +
        "every thread",
    );
  }
}

/** The message for a plugin type that is not registered, with a suggestion. */
export function unknownTypeMessage(
  kind: PluginKind,
  type: string,
  registry: PluginRegistry,
): string {
  const names = registry.names(kind);
  const head = `Unknown ${kind} type ${JSON.stringify(type)}`;
  if (names.length === 0) return `${head}; no ${kind} plugins are registered`;
  const hint = didYouMean(type, names);
  return hint
    ? `${head}${hint} Known ${kind} types: ${quoteList(names)}`
    : `${head}; known ${kind} types: ${quoteList(names)}`;
}

/** The entries of a mapping; none for anything else. */
export function entriesOf(value: unknown): [string, unknown][] {
  return isRecord(value) ? Object.entries(value) : [];
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Grafana's provisioning in deploy/grafana, read the way Grafana reads it, for tests that check it
 * without Grafana (there is no Debian package): the dashboards, their PromQL and SQL queries, and
 * the SQL with Grafana's macros expanded so PostgreSQL itself can run it.
 *
 * @module
 */
import { ROOT } from "./cli.ts";

/** One query of a panel, an annotation or a template variable. */
export interface DashboardQuery {
  dashboard: string;
  where: string;
  datasource: { type?: string; uid?: string } | undefined;
  expr?: string;
  rawSql?: string;
}

/** A provisioned dashboard file, parsed. */
export interface Dashboard {
  file: string;
  // Grafana's dashboard model is large and open-ended; only what the tests read is typed below.
  // deno-lint-ignore no-explicit-any
  json: any;
}

/** Every dashboard JSON in deploy/grafana/dashboards. */
export async function dashboards(): Promise<Dashboard[]> {
  const dir = `${ROOT}deploy/grafana/dashboards`;
  const out: Dashboard[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".json")) continue;
    out.push({
      file: entry.name,
      json: JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`)),
    });
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

/** Every query of a dashboard: panel targets, annotations and template variables. */
export function queries({ file, json }: Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const panel of json.panels ?? []) {
    for (const t of panel.targets ?? []) {
      out.push({
        dashboard: file,
        where: `panel "${panel.title}" ${t.refId}`,
        datasource: t.datasource ?? panel.datasource,
        expr: t.expr,
        rawSql: t.rawSql,
      });
    }
  }
  for (const a of json.annotations?.list ?? []) {
    if (a.target) {
      out.push({
        dashboard: file,
        where: `annotation "${a.name}"`,
        datasource: a.datasource,
        rawSql: a.target.rawSql,
        expr: a.target.expr,
      });
    }
  }
  for (const v of json.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const sql = typeof v.query === "string" ? v.query : v.query?.rawSql;
    out.push({
      dashboard: file,
      where: `variable $${v.name}`,
      datasource: v.datasource,
      rawSql: sql,
    });
  }
  return out;
}

/** Metric names a PromQL expression reads (TelemetryHub's and the process's). */
export function promqlMetrics(expr: string): string[] {
  return [...new Set(expr.match(/\b(telemetry|process|nodejs)_[a-z_]+/g) ?? [])];
}

/**
 * `sql` as Grafana would send it: `$__timeFilter(col)` over the last `hours`, `$__timeGroupAlias`
 * by the minute, and each `$name` of `vars` as a quoted list (numbers unquoted).
 */
export function expandSqlMacros(
  sql: string,
  vars: Record<string, (string | number)[]>,
  hours = 1,
): string {
  let out = sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, `$1 > now() - interval '${hours} hours'`)
    .replace(/\$__timeGroupAlias\(([^,]+),[^)]*\)/g, "date_trunc('minute', $1) AS time");
  for (const [name, values] of Object.entries(vars)) {
    const list = values.map((v) =>
      typeof v === "number" ? String(v) : `'${v.replaceAll("'", "''")}'`
    )
      .join(", ");
    out = out.replace(new RegExp(`\\$${name}\\b`, "g"), () => list);
  }
  const left = out.match(/\$\w+/);
  if (left) throw new Error(`No value for ${left[0]} in: ${sql}`);
  return out;
}

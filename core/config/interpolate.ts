/**
 * Environment interpolation of `telemetry.yaml` values, and the secret
 * tracking that goes with it.
 *
 * In every scalar value (never in keys):
 *
 * - `${VAR}`: the variable; a problem when it is not set;
 * - `${VAR:-default}`: the default when the variable is unset or empty;
 * - `${VAR:?message}`: a problem carrying `message` when unset or empty;
 * - `$$`: a literal `$`. A `$` followed by anything else is kept as is.
 *
 * @module
 */
import { parseDocument, Scalar } from "yaml";
import { redactValue } from "../redact.ts";

/** Environment variables, as `Deno.env.toObject()` gives them. */
export type Env = Record<string, string | undefined>;

/** What interpolating one scalar gave. */
export interface Interpolated {
  /** The value: a string, or a re-parsed scalar (number, boolean, null) when coerced. */
  value: unknown;
  /** Problems found (unset variables, malformed references); empty when fine. */
  problems: string[];
  /** Values substituted from variables whose names look secret. */
  secrets: string[];
  /** Every value taken from the environment (not defaults), with its variable's name. */
  substituted?: { name: string; value: string }[];
}

/** Whether an environment variable's name says it holds a secret. */
export function isSecretVariable(name: string): boolean {
  return /(PASS|PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH)/i.test(name);
}

export { isSecretKey } from "../redact.ts";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Interpolates one scalar's text. `plain` says the YAML scalar was unquoted:
 * a plain scalar that is exactly one `${...}` is re-read as a YAML scalar
 * after substitution, so `workers: ${WORKERS:-4}` gives the number 4.
 *
 * @example
 * ```ts
 * import { interpolate } from "./interpolate.ts";
 * interpolate("${WORKERS:-4}", {}, { plain: true }).value; // 4
 * interpolate("redis://${HOST:-localhost}:6379", {}, { plain: true }).value; // "redis://localhost:6379"
 * interpolate("cost: $$5", {}).value; // "cost: $5"
 * ```
 */
export function interpolate(
  text: string,
  env: Env,
  { plain = false }: { plain?: boolean } = {},
): Interpolated {
  if (!text.includes("$")) return { value: text, problems: [], secrets: [] };
  const problems: string[] = [];
  const secrets: string[] = [];
  const substituted: { name: string; value: string }[] = [];
  let out = "";
  let references = 0;
  let literalText = false;
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf("$", i);
    if (dollar === -1) {
      out += text.slice(i);
      literalText = true;
      break;
    }
    if (dollar > i) literalText = true;
    out += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === "$") {
      out += "$";
      literalText = true;
      i = dollar + 2;
      continue;
    }
    if (next !== "{") {
      out += "$";
      literalText = true;
      i = dollar + 1;
      continue;
    }
    const close = text.indexOf("}", dollar + 2);
    if (close === -1) {
      problems.push(
        `Unclosed reference ${JSON.stringify(text.slice(dollar))}; write $$ for a literal "$"`,
      );
      out += text.slice(dollar);
      break;
    }
    references++;
    i = close + 1;
    const body = text.slice(dollar + 2, close);
    const match = /^([^:]*)(?::([-?])([\s\S]*))?$/.exec(body)!;
    const name = match[1]!;
    const operator = match[2];
    const argument = match[3] ?? "";
    if (!NAME.test(name)) {
      problems.push(
        `Invalid reference "\${${body}}": expected \${NAME}, \${NAME:-default} or ` +
          `\${NAME:?message}; write $$ for a literal "$"`,
      );
      continue;
    }
    const raw = env[name];
    let value: string;
    if (operator === "-") {
      value = raw === undefined || raw === "" ? argument : raw;
    } else if (operator === "?") {
      if (raw === undefined || raw === "") {
        const state = raw === undefined ? "is not set" : "is empty";
        problems.push(
          `Environment variable ${JSON.stringify(name)} ${state}` +
            (argument.trim() ? `: ${argument.trim()}` : ""),
        );
        continue;
      }
      value = raw;
    } else {
      if (raw === undefined) {
        problems.push(`Environment variable ${JSON.stringify(name)} is not set`);
        continue;
      }
      value = raw;
    }
    if (isSecretVariable(name) && value !== "") secrets.push(value);
    if (value !== "" && value === raw) substituted.push({ name, value });
    out += value;
  }
  if (plain && references === 1 && !literalText && problems.length === 0) {
    return {
      value: coerceScalar(out),
      problems,
      secrets,
      ...(substituted.length ? { substituted } : {}),
    };
  }
  return { value: out, problems, secrets, ...(substituted.length ? { substituted } : {}) };
}

/**
 * Reads `text` as a plain YAML scalar: `"4"` → 4, `"true"` → true, `"~"` →
 * null. Anything that is not a single scalar (a list, a mapping, a comment,
 * nothing) stays the string it was.
 */
export function coerceScalar(text: string): unknown {
  if (text.trim() === "") return text;
  const doc = parseDocument(text);
  if (doc.errors.length > 0 || doc.warnings.length > 0) return text;
  const node = doc.contents;
  if (!(node instanceof Scalar)) return text;
  return node.value;
}

// ---------------------------------------------------------------- secrets

// One redaction for the whole product lives in core/redact.ts; these names stay for callers.
export { urlPasswords } from "../redact.ts";

/**
 * A plain-JSON copy of `value` with every secret replaced by `"***"`; see
 * {@link redactValue}.
 */
export function redact(value: unknown, secrets: ReadonlySet<string>): unknown {
  return redactValue(value, secrets);
}

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
}

/** Whether an environment variable's name says it holds a secret. */
export function isSecretVariable(name: string): boolean {
  return /(PASS|PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH)/i.test(name);
}

const SECRET_KEY =
  /pass(word|wd|phrase)?$|^pwd$|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|authorization|^auth$|credential/i;

/**
 * Whether a config key's name says its value is a secret (`password`,
 * `token`, `api_key`, `Authorization`, `client_secret`…).
 */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

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
    out += value;
  }
  if (plain && references === 1 && !literalText && problems.length === 0) {
    return { value: coerceScalar(out), problems, secrets };
  }
  return { value: out, problems, secrets };
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

const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:@/?#]*):([^\s@/?#]*)@/gi;

/** Passwords found inside URLs (`redis://user:pw@host` → `pw`). */
export function urlPasswords(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(URL_PASSWORD)) {
    if (match[3]) found.push(match[3]);
  }
  return found;
}

/**
 * `text` with the password of every URL in it replaced by `***`.
 *
 * @example
 * ```ts
 * import { redactUrlPasswords } from "./interpolate.ts";
 * redactUrlPasswords('Cannot open "postgres://app:pw@db/x"'); // 'Cannot open "postgres://app:***@db/x"'
 * ```
 */
export function redactUrlPasswords(text: string): string {
  return text.replace(
    URL_PASSWORD,
    (whole, scheme: string, user: string, password: string) =>
      password ? `${scheme}${user}:***@` : whole,
  );
}

/** Below this length a secret is only redacted where it is the whole value. */
const MIN_EMBEDDED_SECRET = 4;

/**
 * A plain-JSON copy of `value` with every secret replaced by `"***"`: string
 * values of secret-looking keys, values equal to (or, for secrets of 4 characters
 * or more, containing) a known secret, and passwords inside URLs.
 *
 * @example
 * ```ts
 * import { redact } from "./interpolate.ts";
 * redact({ url: "redis://app:pw@cache:6379", token: "abc", note: "x" }, new Set());
 * // { url: "redis://app:***@cache:6379", token: "***", note: "x" }
 * ```
 */
export function redact(value: unknown, secrets: ReadonlySet<string>): unknown {
  const known = [...secrets].filter((s) => s !== "").sort((a, b) => b.length - a.length);
  const plain: unknown = JSON.parse(
    JSON.stringify(value, (_key, v: unknown) => typeof v === "bigint" ? v.toString() : v) ??
      "null",
  );
  const walk = (v: unknown, secretKey: boolean): unknown => {
    if (Array.isArray(v)) return v.map((item) => walk(item, secretKey));
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v).map(([k, item]) => [k, walk(item, isSecretKey(k))]),
      );
    }
    if (typeof v !== "string") return v;
    if (v === "") return v;
    if (secretKey || secrets.has(v)) return "***";
    let text = redactUrlPasswords(v);
    for (const secret of known) {
      if (secret.length >= MIN_EMBEDDED_SECRET) text = text.split(secret).join("***");
    }
    return text;
  };
  return walk(plain, false);
}

/**
 * The one redaction of TelemetryHub: every log line, API response and
 * start-up error that can show configuration or an error passes through
 * {@link redactText} or {@link redactValue}, so a secret is hidden the same
 * way wherever it would appear.
 *
 * What counts as a secret:
 *
 * - values the caller knows (substituted from secret-looking environment
 *   variables, values of secret-looking keys);
 * - the password of a URL (`redis://app:pw@host` → `redis://app:***@host`);
 * - token-like URL path segments (Slack's, Discord's and Teams' webhook
 *   paths, and any long segment that mixes letters and digits);
 * - secret-looking query parameters (`?api_key=`, `?token=`, `?sig=`…);
 * - in structured values, the value of every secret-looking key.
 *
 * @module
 */

/** What a hidden secret is replaced by. */
export const REDACTED = "***";

const SECRET_KEY =
  /pass(word|wd|phrase)?$|^pwd$|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|authorization|^auth$|credential/i;

/**
 * Whether a config key or header name says its value is a secret
 * (`password`, `token`, `api_key`, `Authorization`, `client_secret`…).
 *
 * @example
 * ```ts
 * import { isSecretKey } from "@telemetryhub/telemetryhub";
 * isSecretKey("client_secret"); // true
 * isSecretKey("host"); // false
 * ```
 */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Query parameters whose value is a credential (beyond {@link isSecretKey} names). */
const SECRET_PARAM =
  /^(key|apikey|sig|signature|code|auth|access_token|refresh_token|jwt|session|sid)$/i;

/**
 * Whether a URL query parameter's name says its value is a credential.
 *
 * @example
 * ```ts
 * import { isSecretParam } from "@telemetryhub/telemetryhub";
 * isSecretParam("sig"); // true
 * isSecretParam("page"); // false
 * ```
 */
export function isSecretParam(name: string): boolean {
  return SECRET_PARAM.test(name) || isSecretKey(name);
}

/** URLs in free text: a scheme, `://`, then anything up to a space, quote or bracket. */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`\\]+/gi;
// The password runs to the last "@" of the authority: passwords may hold "@" unescaped.
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/)([^\s:@/?#]*):([^\s/?#]*)@/i;

/**
 * Path prefixes after which everything is a credential, by host. Slack
 * (`/services/T…/B…/token`), Discord (`/api/webhooks/id/token`), Microsoft
 * Teams (`/webhookb2/…`) and Zapier-style hooks.
 */
const SECRET_PATHS: readonly [RegExp, RegExp][] = [
  [/(^|\.)slack\.com$/i, /^(\/services\/)/],
  [/(^|\.)discord(app)?\.com$/i, /^(\/api\/webhooks\/)/],
  [/(^|\.)office\.com$|(^|\.)office365\.com$/i, /^(\/webhookb2\/)/],
  [/(^|\.)zapier\.com$/i, /^(\/hooks\/catch\/)/],
];

/** A path segment that looks like a generated token: long, with letters and digits. */
function looksLikeToken(segment: string): boolean {
  return segment.length >= 20 && /[A-Za-z]/.test(segment) && /\d/.test(segment) &&
    /^[A-Za-z0-9_~.+=%-]+$/.test(segment);
}

/**
 * Passwords found inside URLs in `text` (`redis://user:pw@host` → `pw`).
 *
 * @example
 * ```ts
 * import { urlPasswords } from "@telemetryhub/telemetryhub";
 * urlPasswords("redis://app:pw@cache:6379 and amqp://u:p2@mq"); // ["pw", "p2"]
 * ```
 */
export function urlPasswords(text: string): string[] {
  const found: string[] = [];
  for (const [url] of text.matchAll(URL_IN_TEXT)) {
    const password = URL_PASSWORD.exec(url)?.[3];
    if (password) found.push(password);
  }
  return found;
}

/** One URL with its password, token-like path segments and secret query values hidden. */
function redactUrl(url: string): string {
  let out = url.replace(
    URL_PASSWORD,
    (whole, scheme: string, user: string, password: string) =>
      password ? `${scheme}${user}:${REDACTED}@` : whole,
  );
  // Split by hand: URL() would normalise what the reader should recognise.
  const schemeEnd = out.indexOf("://") + 3;
  const pathStart = out.slice(schemeEnd).search(/[/?#]/);
  if (pathStart === -1) return out;
  const authority = out.slice(schemeEnd, schemeEnd + pathStart);
  const host = authority.replace(/^.*@/, "").replace(/:\d+$/, "");
  const rest = out.slice(schemeEnd + pathStart);
  const queryAt = rest.search(/[?#]/);
  let path = queryAt === -1 ? rest : rest.slice(0, queryAt);
  let tail = queryAt === -1 ? "" : rest.slice(queryAt);
  const known = SECRET_PATHS.find(([hosts]) => hosts.test(host));
  const prefix = known ? known[1].exec(path)?.[1] : undefined;
  if (prefix !== undefined && path.length > prefix.length) {
    path = prefix + REDACTED;
  } else {
    path = path.split("/").map((s) => looksLikeToken(s) ? REDACTED : s).join("/");
  }
  tail = tail.replace(
    /([?&;])([^=&;#]+)=([^&;#]*)/g,
    (whole, sep: string, name: string, value: string) =>
      value !== "" && isSecretParam(decodeSafely(name)) ? `${sep}${name}=${REDACTED}` : whole,
  );
  out = out.slice(0, schemeEnd) + authority + path + tail;
  return out;
}

function decodeSafely(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Below this length a known secret is only hidden where it is a whole value. */
const MIN_EMBEDDED_SECRET = 3;

/**
 * `text` with every secret hidden: URL passwords, token-like URL paths and
 * query parameters, and each of the `secrets` given (3 characters or more;
 * also in its JSON-escaped form, so it is hidden inside serialised JSON).
 *
 * @example
 * ```ts
 * import { redactText } from "./redact.ts";
 * redactText('Cannot open "postgres://app:pw@db/x"'); // 'Cannot open "postgres://app:***@db/x"'
 * redactText("POST https://hooks.slack.com/services/T0/B0/abc failed");
 * // "POST https://hooks.slack.com/services/*** failed"
 * redactText("token s3cret refused", new Set(["s3cret"])); // "token *** refused"
 * ```
 */
export function redactText(text: string, secrets?: Iterable<string>): string {
  let out = text.includes("://") ? text.replace(URL_IN_TEXT, redactUrl) : text;
  if (secrets) {
    for (const secret of longestFirst(secrets)) {
      if (secret.length < MIN_EMBEDDED_SECRET) continue;
      out = out.split(secret).join(REDACTED);
      const escaped = JSON.stringify(secret).slice(1, -1);
      if (escaped !== secret) out = out.split(escaped).join(REDACTED);
    }
  }
  return out;
}

const sorted = new WeakMap<object, { size: number; list: string[] }>();

/** The secrets, longest first (so a secret containing another is hidden whole); cached per set. */
function longestFirst(secrets: Iterable<string>): string[] {
  const size = secrets instanceof Set ? secrets.size : -1;
  const cached = typeof secrets === "object" ? sorted.get(secrets) : undefined;
  if (cached && size !== -1 && cached.size === size) return cached.list;
  const list = [...secrets].filter((s) => s !== "").sort((a, b) => b.length - a.length);
  if (size !== -1) sorted.set(secrets, { size, list });
  return list;
}

/**
 * A plain-JSON copy of `value` with every secret hidden: the string values
 * of secret-looking keys become `"***"`, values equal to a known secret
 * become `"***"`, and every other string goes through {@link redactText}.
 *
 * @example
 * ```ts
 * import { redactValue } from "./redact.ts";
 * redactValue({ url: "redis://app:pw@cache:6379", token: "abc", note: "x" });
 * // { url: "redis://app:***@cache:6379", token: "***", note: "x" }
 * ```
 */
export function redactValue(value: unknown, secrets: ReadonlySet<string> = new Set()): unknown {
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
    if (typeof v !== "string" || v === "") return v;
    if (secretKey || secrets.has(v)) return REDACTED;
    return redactText(v, secrets);
  };
  return walk(plain, false);
}

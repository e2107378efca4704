import assert from "node:assert/strict";
import {
  coerceScalar,
  interpolate,
  isSecretKey,
  isSecretVariable,
  redact,
  urlPasswords,
} from "./interpolate.ts";
import { redactText } from "../redact.ts";

Deno.test("interpolate() substitutes ${VAR} and reports an unset variable", () => {
  assert.deepEqual(interpolate("host-${HOST}", { HOST: "a" }), {
    value: "host-a",
    problems: [],
    secrets: [],
    substituted: [{ name: "HOST", value: "a" }],
  });
  assert.deepEqual(interpolate("${HOST}", {}).problems, [
    'Environment variable "HOST" is not set',
  ]);
  // Set but empty is a value, not a problem.
  assert.deepEqual(interpolate("${HOST}", { HOST: "" }), { value: "", problems: [], secrets: [] });
});

Deno.test("interpolate() uses the :- default when the variable is unset or empty", () => {
  assert.equal(interpolate("${PORT:-8080}", {}).value, "8080");
  assert.equal(interpolate("${PORT:-8080}", { PORT: "" }).value, "8080");
  assert.equal(interpolate("${PORT:-8080}", { PORT: "9090" }).value, "9090");
  assert.equal(interpolate("${PATHS:-/a:/b}", {}).value, "/a:/b");
  assert.equal(interpolate("${EMPTY:-}", {}).value, "");
});

Deno.test("interpolate() reports the :? message when the variable is unset or empty", () => {
  assert.deepEqual(interpolate("${DB:?set DB to a PostgreSQL URL}", {}).problems, [
    'Environment variable "DB" is not set: set DB to a PostgreSQL URL',
  ]);
  assert.deepEqual(interpolate("${DB:?}", { DB: "" }).problems, [
    'Environment variable "DB" is empty',
  ]);
  assert.equal(interpolate("${DB:?required}", { DB: "postgres://x" }).value, "postgres://x");
});

Deno.test("interpolate() reports every problem of a value", () => {
  assert.deepEqual(interpolate("${A}-${B}", {}).problems, [
    'Environment variable "A" is not set',
    'Environment variable "B" is not set',
  ]);
});

Deno.test("interpolate() turns $$ into a literal $ and keeps a lone $", () => {
  assert.equal(interpolate("cost: $$5", {}).value, "cost: $5");
  assert.equal(interpolate("$${HOME}", { HOME: "/root" }).value, "${HOME}");
  assert.equal(interpolate("price $5 and $HOME", {}).value, "price $5 and $HOME");
  assert.equal(interpolate("a$", {}).value, "a$");
});

Deno.test("interpolate() reports malformed references", () => {
  assert.match(interpolate("${BAD-NAME}", {}).problems[0]!, /^Invalid reference "\$\{BAD-NAME\}"/);
  assert.match(interpolate("${}", {}).problems[0]!, /^Invalid reference/);
  assert.match(interpolate("x ${OPEN", {}).problems[0]!, /^Unclosed reference "\$\{OPEN"/);
});

Deno.test("interpolate() re-reads a plain scalar that is one reference as a YAML scalar", () => {
  assert.equal(interpolate("${WORKERS:-4}", {}, { plain: true }).value, 4);
  assert.equal(interpolate("${RATIO}", { RATIO: "0.5" }, { plain: true }).value, 0.5);
  assert.equal(interpolate("${ON:-true}", {}, { plain: true }).value, true);
  assert.equal(interpolate("${NOTHING:-~}", {}, { plain: true }).value, null);
  assert.equal(interpolate("${NAME:-boiler}", {}, { plain: true }).value, "boiler");
});

Deno.test("interpolate() keeps a string when quoted, mixed with text or not a scalar", () => {
  assert.equal(interpolate("${WORKERS:-4}", {}, { plain: false }).value, "4");
  assert.equal(interpolate("${A:-4}${B:-2}", {}, { plain: true }).value, "42");
  assert.equal(interpolate("x${A:-4}", {}, { plain: true }).value, "x4");
  assert.equal(interpolate("${LIST:-[1, 2]}", {}, { plain: true }).value, "[1, 2]");
  assert.equal(interpolate("${MAP:-a: b}", {}, { plain: true }).value, "a: b");
  assert.equal(interpolate("${E:-}", {}, { plain: true }).value, "");
});

Deno.test("coerceScalar() reads YAML 1.2 scalars and leaves the rest as strings", () => {
  assert.equal(coerceScalar("12"), 12);
  assert.equal(coerceScalar("false"), false);
  assert.equal(coerceScalar("yes"), "yes");
  assert.equal(coerceScalar("# comment"), "# comment");
  assert.equal(coerceScalar("'quoted'"), "quoted");
});

Deno.test("interpolate() marks values of secret-named variables as secrets", () => {
  const env = { REDIS_PASSWORD: "pw1", API_TOKEN: "t0k", HOST: "cache", EMPTY_SECRET: "" };
  assert.deepEqual(
    interpolate("redis://:${REDIS_PASSWORD}@${HOST}", env).secrets,
    ["pw1"],
  );
  assert.deepEqual(interpolate("${API_TOKEN}", env, { plain: true }).secrets, ["t0k"]);
  assert.deepEqual(interpolate("${DB_PASS:-default-pw}", {}).secrets, ["default-pw"]);
  assert.deepEqual(interpolate("${EMPTY_SECRET}", env).secrets, []);
  assert.deepEqual(interpolate("${HOST}", env).secrets, []);
});

Deno.test("isSecretVariable() and isSecretKey() recognise secret names", () => {
  for (const name of ["REDIS_PASSWORD", "API_KEY", "GITHUB_TOKEN", "AWS_SECRET", "BASIC_AUTH"]) {
    assert.ok(isSecretVariable(name), name);
  }
  assert.ok(!isSecretVariable("HOST"));
  for (const key of ["password", "db_password", "token", "admin_token", "api_key", "apiKey"]) {
    assert.ok(isSecretKey(key), key);
  }
  for (const key of ["Authorization", "client_secret", "credentials", "auth", "passphrase"]) {
    assert.ok(isSecretKey(key), key);
  }
  for (const key of ["url", "key_prefix", "author", "passes", "host", "port"]) {
    assert.ok(!isSecretKey(key), key);
  }
});

Deno.test("urlPasswords() finds the password of every URL; redactText() hides it", () => {
  assert.deepEqual(urlPasswords("redis://user:pw@host:6379 and postgres://a:b%40c@db/x"), [
    "pw",
    "b%40c",
  ]);
  assert.deepEqual(urlPasswords("redis://host:6379 http://user@host"), []);
  assert.equal(redactText("redis://user:pw@host"), "redis://user:***@host");
  assert.equal(redactText("redis://:pw@host"), "redis://:***@host");
  assert.equal(redactText("redis://host:6379/0"), "redis://host:6379/0");
});

Deno.test("redact() hides secret keys, known secrets and URL passwords, keeping the rest", () => {
  const value = {
    url: "redis://app:pw@cache:6379",
    token: "abc",
    headers: { Authorization: "Bearer xyz", Accept: "json" },
    note: "contains hunter22 inside",
    exact: "ab",
    list: ["hunter22", "plain"],
    count: 3,
    empty_token: "",
  };
  assert.deepEqual(redact(value, new Set(["hunter22", "ab"])), {
    url: "redis://app:***@cache:6379",
    token: "***",
    headers: { Authorization: "***", Accept: "json" },
    note: "contains *** inside",
    exact: "***",
    list: ["***", "plain"],
    count: 3,
    empty_token: "",
  });
});

Deno.test("redact() gives plain JSON", () => {
  assert.deepEqual(redact({ when: new Date(0), big: 10n, skip: undefined }, new Set()), {
    when: "1970-01-01T00:00:00.000Z",
    big: "10",
  });
});

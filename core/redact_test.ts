import assert from "node:assert/strict";
import { isSecretParam, redactText, redactValue, urlPasswords } from "./redact.ts";

Deno.test("redactText() hides URL passwords, webhook path tokens and secret query values", () => {
  const cases: [string, string][] = [
    ["postgres://app:pw@db:5432/x", "postgres://app:***@db:5432/x"],
    ["redis://:pw@cache:6379", "redis://:***@cache:6379"],
    ["redis://cache:6379/0", "redis://cache:6379/0"],
    [
      "https://hooks.slack.com/services/T0AAA1111/B0BBB2222/xyzXYZ123abc",
      "https://hooks.slack.com/services/***",
    ],
    [
      "https://discord.com/api/webhooks/123/abcdefTOKEN",
      "https://discord.com/api/webhooks/***",
    ],
    [
      "https://alerts.example/hook/a1b2c3d4e5f6g7h8i9j0k1/send",
      "https://alerts.example/hook/***/send",
    ],
    ["https://x.example/a?api_key=k3y&b=2", "https://x.example/a?api_key=***&b=2"],
    ["https://x.example/a?b=2&token=t0k", "https://x.example/a?b=2&token=***"],
    ["https://x.example/a?sig=abc#frag", "https://x.example/a?sig=***#frag"],
    [
      "http://127.0.0.1:8080/api/v1/samples?pipeline=main",
      "http://127.0.0.1:8080/api/v1/samples?pipeline=main",
    ],
  ];
  for (const [input, expected] of cases) {
    assert.equal(redactText(input), expected, input);
    assert.equal(
      redactText(`Cannot reach "${input}": refused`),
      `Cannot reach "${expected}": refused`,
    );
  }
});

Deno.test("redactText() hides known secrets, also JSON-escaped, longest first", () => {
  const secrets = new Set(["ab", "s3cret", "s3cret-longer", 'q"uote']);
  assert.equal(redactText("s3cret-longer and s3cret", secrets), "*** and ***");
  assert.equal(
    redactText("ab stays: too short to hide inside text", secrets),
    "ab stays: too short to hide inside text",
  );
  assert.equal(redactText(JSON.stringify({ v: 'q"uote' }), secrets), '{"v":"***"}');
});

Deno.test("redactValue() hides secret keys, whole short secrets and URL secrets in nested values", () => {
  assert.deepEqual(
    redactValue({
      url: "redis://app:pw@cache:6379",
      token: "abc",
      headers: { Authorization: "Bearer x", "X-Trace": "1" },
      list: ["ab", "https://x.example/?api_key=zz"],
      n: 1,
      big: 2n,
    }, new Set(["ab"])),
    {
      url: "redis://app:***@cache:6379",
      token: "***",
      headers: { Authorization: "***", "X-Trace": "1" },
      list: ["***", "https://x.example/?api_key=***"],
      n: 1,
      big: "2",
    },
  );
});

Deno.test("urlPasswords() finds every URL password; isSecretParam() knows credential names", () => {
  assert.deepEqual(urlPasswords("redis://u:pw@h and postgres://a:b%40c@db/x"), ["pw", "b%40c"]);
  for (const name of ["api_key", "apikey", "token", "access_token", "sig", "key", "password"]) {
    assert.ok(isSecretParam(name), name);
  }
  for (const name of ["pipeline", "limit", "page"]) assert.ok(!isSecretParam(name), name);
});

Deno.test("redactText() hides a URL password that holds an @", () => {
  assert.equal(redactText("postgres://app:s3cr@t@db:5432/x"), "postgres://app:***@db:5432/x");
  assert.equal(redactText("postgres://app@db/x"), "postgres://app@db/x");
});

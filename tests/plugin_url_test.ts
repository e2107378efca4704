import assert from "node:assert/strict";

Deno.test("a plugin listed by http(s) URL is imported, registered and its schema applied", async () => {
  const source = await Deno.readTextFile(new URL("./_fixtures/remote/plugin.ts", import.meta.url));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/plugin.ts"
        ? new Response(source, { headers: { "content-type": "application/typescript" } })
        : new Response("Not found", { status: 404 }),
  );
  const host = `127.0.0.1:${server.addr.port}`;
  const base = `http://${host}`;
  try {
    // A child process without the lock file: each run's random port would add an entry to it.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-lock",
        "--allow-read",
        "--allow-env",
        `--allow-net=${host}`,
        `--allow-import=${host}`,
        new URL("./_fixtures/remote/load.ts", import.meta.url).pathname,
        base,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, stderr);
    const [loaded, badConfig, missing] = JSON.parse(new TextDecoder().decode(out.stdout));

    assert.equal(loaded.ok, true, loaded.message);
    assert.equal(loaded.source, `${base}/plugin.ts`);
    assert.deepEqual(loaded.config, { note: "" });

    assert.equal(badConfig.ok, false);
    assert.equal(badConfig.configError, true);
    assert.match(
      badConfig.message,
      /handlers\.r\.config\.nte: Unknown key "nte"; did you mean "note"\?/,
    );

    assert.equal(missing.ok, false);
    assert.match(
      missing.message,
      /plugins\[0\]: Cannot load plugin module "http:\/\/127\.0\.0\.1:\d+\/missing\.ts"/,
    );
  } finally {
    await server.shutdown();
  }
});

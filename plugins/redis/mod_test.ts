/**
 * Unit tests of the Redis broker's pure parts: key layout, wire format,
 * decoding of foreign and malformed messages, records and script codes.
 * Behaviour against a real Redis is in tests/redis_*_test.ts.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  decodeDeadLetter,
  decodeElement,
  decodeTask,
  encodeTask,
  matchesSelector,
  recordFromHash,
  redisKeys,
} from "./_codec.ts";
import { scriptError } from "./_scripts.ts";
import { hostPort, topology } from "./_topology.ts";
import { CLUSTER_SLOTS, shardKeys, shardOf, shardTags, slotOf } from "./_shards.ts";
import redis from "./mod.ts";

Deno.test("redisKeys() follows the original design's layout", () => {
  const keys = redisKeys("telemetry", "task:{id}");
  assert.deepEqual(keys.queues, ["telemetry:tasks:high", "telemetry:tasks", "telemetry:tasks:low"]);
  assert.equal(keys.dlq, "telemetry:dlq");
  assert.equal(keys.delayed, "telemetry:delayed");
  assert.equal(keys.task("abc"), "task:abc");
  assert.equal(keys.processing("w-1@2"), "telemetry:processing:w-1@2");
  assert.equal(keys.lease("w-1@2"), "telemetry:lease:w-1@2");
  assert.equal(redisKeys("p", "p:{id}:state").task("x"), "p:x:state");
});

Deno.test("redisKeys() refuses a task key pattern without exactly one {id}", () => {
  assert.throws(() => redisKeys("p", "task"), /must contain "\{id\}" exactly once/);
  assert.throws(() => redisKeys("p", "{id}:{id}"), /exactly once/);
});

Deno.test("the config defaults to the seed's prefix and task key and deletes completed tasks", () => {
  const config = redis.config.parse({});
  assert.equal(config.prefix, "telemetry");
  assert.equal(config.task_key, "task:{id}");
  assert.equal(config.retention, 0);
  assert.equal(config.lease, 5000);
  assert.equal(config.capacity, undefined);
  assert.equal(redis.config.safeParse({ task_key: "task" }).success, false);
  assert.equal(redis.config.safeParse({ prefix: "a b" }).success, false);
  assert.equal(redis.config.safeParse({ unknown: 1 }).success, false);
});

Deno.test("encodeTask() writes id then type first, for the scripts' fast path", () => {
  const raw = encodeTask({
    id: "t1",
    type: "telemetry.analyze",
    payload: { x: 1 },
    attempts: 2,
    created_at: 5,
    priority: "high",
    pipeline: "p",
  });
  assert.ok(raw.startsWith('{"id":"t1","type":"telemetry.analyze",'));
  assert.deepEqual(JSON.parse(raw), {
    id: "t1",
    type: "telemetry.analyze",
    priority: "high",
    attempts: 2,
    created_at: 5,
    pipeline: "p",
    payload: { x: 1 },
  });
});

Deno.test("decodeTask() reads a foreign seed-format task with defaults", () => {
  const { task, invalid } = decodeTask(
    '{"type":"telemetry.analyze","id":"s1","payload":{"device":"d","metric":"m","value":1}}',
    99,
  );
  assert.equal(invalid, undefined);
  assert.deepEqual(task, {
    id: "s1",
    type: "telemetry.analyze",
    payload: { device: "d", metric: "m", value: 1 },
    attempts: 0,
    created_at: 99,
  });
});

Deno.test("decodeTask() reports malformed messages with their reason instead of throwing", () => {
  assert.match(decodeTask("{oops", 0).invalid ?? "", /^Task is not valid JSON/);
  assert.equal(decodeTask("[1]", 0).invalid, "Task must be a JSON object");
  assert.equal(decodeTask('{"type":"t"}', 0).invalid, 'Task has no "id" (a non-empty string)');
  assert.equal(
    decodeTask('{"id":"a","payload":{}}', 0).invalid,
    'Task "a" has no "type" (a non-empty string)',
  );
  assert.equal(decodeTask('{"id":"a","type":"t"}', 0).invalid, 'Task "a" has no "payload"');
  assert.equal(
    decodeTask('{"id":"a","type":"t","payload":1,"priority":"urgent"}', 0)
      .task.priority,
    undefined,
  );
});

Deno.test("decodeElement() decodes UTF-8 elements as text and keeps no bytes", () => {
  const text = '{"id":"é\uFFFD","type":"t","payload":"\uFFFD"}';
  const element = decodeElement(Buffer.from(text), 1);
  assert.equal(element.raw, text);
  assert.equal(element.bytes, undefined, "a real U+FFFD is valid UTF-8");
  assert.equal(element.invalid, undefined);
  assert.equal(element.task.id, "é\uFFFD");
});

Deno.test("decodeElement() refuses bytes that are not UTF-8 and keeps them exactly", () => {
  const junk = Buffer.from([0x80, 0xff, 0x00]);
  const element = decodeElement(junk, 5);
  assert.equal(element.bytes, junk);
  assert.equal(element.invalid, "Task is not valid UTF-8 (3 bytes, kept base64-encoded)");
  assert.deepEqual(element.task, { id: "", type: "", payload: null, attempts: 0, created_at: 5 });
  // Valid JSON around bad bytes keeps its id (its record is settled too), not its payload.
  const inJson = Buffer.concat([
    Buffer.from('{"id":"a","type":"t","attempts":2,"payload":"'),
    Buffer.from([0xc3]),
    Buffer.from('"}'),
  ]);
  const named = decodeElement(inJson, 5);
  assert.equal(named.bytes, inJson);
  assert.match(named.invalid ?? "", /not valid UTF-8/);
  assert.deepEqual(named.task, { id: "a", type: "t", payload: null, attempts: 2, created_at: 5 });
  // An id read through bad bytes is not the id Redis holds: left out.
  const badId = Buffer.concat([Buffer.from('{"id":"'), Buffer.from([0xff]), Buffer.from('"}')]);
  assert.equal(decodeElement(badId, 5).task.id, "");
});

Deno.test("decodeDeadLetter() ignores elements the broker did not write", () => {
  assert.equal(decodeDeadLetter("junk"), undefined);
  assert.equal(decodeDeadLetter('{"task":{}}'), undefined);
  const letter = decodeDeadLetter(
    '{"seq":3,"task":{"id":"a","type":"t"},"error":{"message":"x"},"attempts":1}',
  );
  assert.equal(letter?.seq, 3);
});

Deno.test("matchesSelector() requires every given filter to match", () => {
  const letter = {
    task: { id: "a", type: "t1", payload: null, attempts: 1, created_at: 0, pipeline: "p1" },
    error: { message: "x", name: "Error", permanent: false },
    attempts: 1,
    dead_lettered_at: 0,
  };
  assert.equal(matchesSelector(letter, {}), true);
  assert.equal(matchesSelector(letter, { ids: ["a"], type: "t1" }), true);
  assert.equal(matchesSelector(letter, { ids: ["b"] }), false);
  assert.equal(matchesSelector(letter, { type: "t1", pipeline: "p2" }), false);
});

Deno.test("recordFromHash() builds a task record and skips hashes without a state", () => {
  assert.equal(recordFromHash("a", {}), undefined);
  assert.equal(recordFromHash("a", { state: "bogus" }), undefined);
  const record = recordFromHash("a", {
    id: "a",
    type: "t",
    state: "failed",
    attempts: "2",
    priority: "low",
    created_at: "10",
    updated_at: "20",
    worker: "w1",
    due_at: "30",
    last_error: '{"message":"x","name":"Error","permanent":false}',
  });
  assert.deepEqual(record, {
    id: "a",
    type: "t",
    state: "failed",
    attempts: 2,
    priority: "low",
    created_at: 10,
    updated_at: 20,
    worker: "w1",
    due_at: 30,
    last_error: { message: "x", name: "Error", permanent: false },
  });
});

Deno.test("scriptError() maps every status code, and names unknown ones", () => {
  assert.equal(scriptError("thEnqueue", "ok", undefined, "b"), undefined);
  assert.equal(scriptError("thEnqueue", "again", undefined, "b"), undefined);
  assert.equal(scriptError("thEnqueue", "full", undefined, "b"), undefined);
  assert.equal(
    scriptError("thEnqueue", "duplicate", "t1", "b")?.message,
    'Task "t1" is already in broker "b"',
  );
  assert.match(scriptError("thSettle", "stale", "t1", "b")?.message ?? "", /lease expired/);
  assert.equal(
    scriptError("thSettle", "weird", undefined, "b")?.message,
    'Script "thSettle" of broker "b" returned unknown code "weird"',
  );
});

Deno.test("the config takes sentinels and a master name instead of a url, never both", () => {
  const ok = redis.config.parse({ sentinels: ["10.0.0.1:26379"], name: "mymaster" });
  assert.equal(ok.url, undefined);
  assert.equal(ok.wait_replicas, 0);
  const issues = (input: Record<string, unknown>) =>
    redis.config.safeParse(input).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  assert.deepEqual(issues({ sentinels: ["h:1"] }), [
    "name: `sentinels` needs the `name` of the master they monitor",
  ]);
  assert.deepEqual(issues({ url: "redis://h", sentinels: ["h:1"], name: "m" }), [
    "sentinels: Give one of `url`, `sentinels` or `cluster`, not several",
  ]);
  assert.deepEqual(issues({ password: "x" }), [
    "password: `password` is only used with `sentinels` or `cluster` (put credentials in `url`)",
  ]);
  assert.match(issues({ sentinels: ["h"], name: "m" })?.[0] ?? "", /host:port/);
});

Deno.test("topology() names the target without its secrets", () => {
  const parse = (input: Record<string, unknown>) => topology(redis.config.parse(input));
  assert.equal(parse({}).where, "redis://127.0.0.1:6379");
  assert.equal(parse({ url: "redis://app:s3cret@h:6380/2" }).where, "redis://app:***@h:6380/2");
  assert.equal(
    parse({ sentinels: ["a:1", "b:2"], name: "m", password: "s3cret" }).where,
    "redis-sentinel://a:1,b:2/m",
  );
  assert.deepEqual(hostPort("::1:26379"), { host: "::1", port: 26379 });
});

Deno.test("shardTags() puts shard i's hash tag in the i-th of N equal slot ranges, the same every time", () => {
  for (const n of [1, 3, 12, 16]) {
    const tags = shardTags("telemetry", n);
    assert.deepEqual(shardTags("telemetry", n), tags);
    tags.forEach((tag, i) => {
      const slot = slotOf(tag);
      assert.ok(
        slot >= Math.floor((i * CLUSTER_SLOTS) / n) && slot < ((i + 1) * CLUSTER_SLOTS) / n,
      );
    });
  }
  // Every key of a shard shares its slot, task records included.
  const [keys] = shardKeys("telemetry", 12);
  const slots = [keys!.queues[0], keys!.queues[1], keys!.dlq, keys!.task("abc"), keys!.lease("w@1")]
    .map(slotOf);
  assert.equal(new Set(slots).size, 1);
  assert.match(keys!.task("abc"), /^\{telemetry:0(\.\d+)?\}:task:abc$/);
});

Deno.test("shardOf() spreads ids evenly and sends an id to the same shard every time", () => {
  const counts = Array.from({ length: 12 }, () => 0);
  for (let i = 0; i < 12_000; i++) counts[shardOf(`task-${i}`, 12)]!++;
  for (const c of counts) assert.ok(c > 800 && c < 1200, `uneven: ${counts}`);
  assert.equal(shardOf("abc", 12), shardOf("abc", 12));
  assert.equal(shardOf("abc", 1), 0);
});

import assert from "node:assert/strict";
import { backoffDelay, decideFailure, type RetryPolicy } from "./backoff.ts";
import { seededRandom } from "./random.ts";

const POLICY: RetryPolicy = { max_attempts: 5, delay: 100, max: 10_000, jitter: 0.2 };

Deno.test("seededRandom(42) gives the reference mulberry32 sequence", () => {
  const rng = seededRandom(42);
  // Computed independently from the mulberry32 reference algorithm.
  assert.deepEqual(Array.from({ length: 4 }, rng), [
    0.6011037519201636,
    0.44829055899754167,
    0.8524657934904099,
    0.6697340414393693,
  ]);
});

Deno.test("backoffDelay() with a seeded source gives exact jittered delays, capped at max", () => {
  const rng = seededRandom(42);
  const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(POLICY, n, rng));
  // base 100·2^(n-1) capped at 10000, then base·(0.8 + 0.4·r), rounded, capped again.
  assert.deepEqual(delays, [104, 196, 456, 854, 1392, 3234, 5819, 10_000]);
});

Deno.test("backoffDelay() without jitter doubles from delay and stops at max", () => {
  const policy = { ...POLICY, jitter: 0 };
  const delays = Array.from({ length: 10 }, (_, i) => backoffDelay(policy, i + 1, Math.random));
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
});

Deno.test("backoffDelay() honours a custom factor and treats attempt 0 as the first retry", () => {
  const policy = { ...POLICY, jitter: 0, factor: 3 };
  assert.deepEqual([0, 1, 2, 3].map((n) => backoffDelay(policy, n, Math.random)), [
    100,
    100,
    300,
    900,
  ]);
});

Deno.test("backoffDelay() stays within ±jitter of the base and within [0, max] over many draws", () => {
  const rng = seededRandom(7);
  for (const attempt of [1, 3, 5]) {
    const base = 100 * 2 ** (attempt - 1);
    let low = Infinity, high = -Infinity;
    for (let i = 0; i < 5000; i++) {
      const d = backoffDelay(POLICY, attempt, rng);
      low = Math.min(low, d);
      high = Math.max(high, d);
    }
    assert.ok(low >= Math.round(base * 0.8), `attempt ${attempt}: ${low} below -20%`);
    assert.ok(high <= Math.round(base * 1.2), `attempt ${attempt}: ${high} above +20%`);
    // The draws actually spread over most of the range.
    assert.ok(low <= base * 0.82 && high >= base * 1.18, `attempt ${attempt}: ${low}..${high}`);
  }
  const capped = { ...POLICY, jitter: 1 };
  for (let i = 0; i < 5000; i++) {
    const d = backoffDelay(capped, 20, rng);
    assert.ok(d >= 0 && d <= capped.max, `${d} outside [0, max]`);
  }
});

Deno.test("backoffDelay() clamps jitter outside 0..1", () => {
  assert.equal(backoffDelay({ ...POLICY, jitter: -1 }, 1, () => 0), 100);
  assert.equal(backoffDelay({ ...POLICY, jitter: 5 }, 1, () => 0), 0);
  assert.equal(backoffDelay({ ...POLICY, jitter: 5 }, 1, () => 0.999), 200);
});

Deno.test("decideFailure() dead-letters a permanent error at once", () => {
  assert.deepEqual(decideFailure(POLICY, 1, true, seededRandom(1)), {
    action: "dead_letter",
    reason: "permanent",
  });
});

Deno.test("decideFailure() dead-letters once attempts reach max_attempts", () => {
  assert.deepEqual(decideFailure(POLICY, 5, false, seededRandom(1)), {
    action: "dead_letter",
    reason: "exhausted",
  });
  assert.deepEqual(decideFailure(POLICY, 6, false, seededRandom(1)), {
    action: "dead_letter",
    reason: "exhausted",
  });
});

Deno.test("decideFailure() retries with the backoff delay while attempts remain", () => {
  const decisions = [1, 2, 3, 4].map((n) => decideFailure(POLICY, n, false, seededRandom(42)));
  // Each call gets a fresh source, so each draw is the first value 0.6011….
  assert.deepEqual(decisions, [
    { action: "retry", delay: 104 },
    { action: "retry", delay: 208 },
    { action: "retry", delay: 416 },
    { action: "retry", delay: 832 },
  ]);
});

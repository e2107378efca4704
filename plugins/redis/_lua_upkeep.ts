/**
 * The Lua scripts of upkeep: recovery of expired leases, the dead-letter
 * queue (pages, replay, purge) and queue depths. See `_scripts.ts` for the
 * conventions every script follows.
 *
 * @module
 */
import { HELPERS } from "./_lua_queue.ts";

/**
 * Returns the tasks of consumers whose lease expired (a processor that was
 * killed, hung or cut off) to the front of their queues. With forced
 * consumers, returns theirs whatever their lease says (used on close).
 * Found consumers are processing lists the caller's key scan came upon:
 * one no consumer entry names (a stop at the wrong moment) is recovered
 * like any other once it has no lease.
 *
 * KEYS: [1] consumer set, [2] queue high, [3] queue normal, [4] queue low
 * ARGV: [1] now, [2] key prefix, [3] task key prefix, [4] task key suffix,
 *       [5] how many forced consumers follow, then consumer key names to recover
 *       regardless of their lease, then found consumer key names
 * Returns: {tasks requeued, consumers recovered}
 */
export const RECOVER = HELPERS + `
local prefix, pre, suf = ARGV[2], ARGV[3], ARGV[4]
local nforced = tonumber(ARGV[5])
local forced, seen, candidates = {}, {}, {}
local function add(c)
  if not seen[c] then
    seen[c] = true
    candidates[#candidates + 1] = c
  end
end
for _, c in ipairs(redis.call('SMEMBERS', KEYS[1])) do add(c) end
for i = 6, 5 + nforced do
  forced[ARGV[i]] = true
  add(ARGV[i]) -- also when not registered yet
end
for i = 6 + nforced, #ARGV do add(ARGV[i]) end
local tasks, consumers = 0, 0
for _, c in ipairs(candidates) do
  if forced[c] or redis.call('EXISTS', prefix .. ':lease:' .. c) == 0 then
    local list = prefix .. ':processing:' .. c
    local items = redis.call('LRANGE', list, 0, -1)
    for j = #items, 1, -1 do
      local raw = items[j]
      redis.call('LPUSH', KEYS[1 + priority_of(raw)], raw)
      local id = task_fields(raw)
      if id then
        local key = pre .. id .. suf
        if redis.call('EXISTS', key) == 1 then
          redis.call('HSET', key, 'state', 'queued', 'updated_at', ARGV[1])
        end
      end
    end
    if #items > 0 then
      tasks = tasks + #items
      consumers = consumers + 1
    end
    redis.call('DEL', list, prefix .. ':lease:' .. c)
    redis.call('SREM', KEYS[1], c)
  end
end
return { tasks, consumers }
`;

/**
 * Moves one dead letter back to its queue with attempts reset, or deletes it.
 *
 * KEYS: [1] dead-letter list, [2] queue high, [3] queue normal, [4] queue low
 * ARGV: [1] now, [2] task key prefix, [3] task key suffix, [4] "replay" or "purge",
 *       then 4 per dead letter: stored entry, id ("" when undecodable), body to requeue
 *       (replay), priority index
 * Returns: how many dead letters were replayed or purged
 */
export const DEAD_LETTERS = `
local now, pre, suf, action = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local n = 0
for i = 5, #ARGV, 4 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
    n = n + 1
    local id = ARGV[i + 1]
    local key = pre .. id .. suf
    if action == 'replay' then
      redis.call('RPUSH', KEYS[1 + tonumber(ARGV[i + 3])], ARGV[i + 2])
      if id ~= '' then
        redis.call('HSET', key, 'state', 'queued', 'attempts', 0, 'updated_at', now)
        redis.call('HDEL', key, 'dead_lettered_at', 'worker')
      end
    elseif id ~= '' then
      redis.call('DEL', key)
    end
  end
end
return n
`;

/**
 * Counts tasks (read only).
 *
 * KEYS: [1] queue high, [2] queue normal, [3] queue low, [4] delayed zset,
 *       [5] dead-letter list, [6] consumer set
 * ARGV: [1] key prefix
 * Returns: {queued, inflight, delayed, dead}
 */
export const DEPTH = `
local inflight = 0
for _, c in ipairs(redis.call('SMEMBERS', KEYS[6])) do
  inflight = inflight + redis.call('LLEN', ARGV[1] .. ':processing:' .. c)
end
return { redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2]) + redis.call('LLEN', KEYS[3]),
  inflight, redis.call('ZCARD', KEYS[4]), redis.call('LLEN', KEYS[5]) }
`;

/**
 * thDeadLetterPage: up to `count` dead letters after a cursor, oldest first.
 * The list is in seq order (RPUSH after INCR; removals keep the order), so
 * the first element past the cursor is found by bisection.
 * KEYS: [1] dead-letter list
 * ARGV: [1] seq after which to start (-1: from the head), [2] count
 * Returns the raw elements.
 */
export const DEAD_LETTER_PAGE = `
local function seq_at(i)
  local raw = redis.call('LINDEX', KEYS[1], i) or ''
  return tonumber(string.match(raw, '^{"seq":(%d+)')) or -1
end
local after = tonumber(ARGV[1])
local lo, hi = 0, redis.call('LLEN', KEYS[1])
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  if seq_at(mid) <= after then lo = mid + 1 else hi = mid end
end
return redis.call('LRANGE', KEYS[1], lo, lo + tonumber(ARGV[2]) - 1)
`;

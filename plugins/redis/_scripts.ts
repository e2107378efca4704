/**
 * The Lua scripts of the Redis broker. Every state change that touches more
 * than one key is one of these scripts, so it is atomic. Each header lists
 * KEYS, ARGV and what the script returns; {@link scriptError} maps the
 * status codes to errors.
 *
 * Task keys (`task:{id}` by default) and per-consumer keys are built inside
 * the scripts from the prefixes passed in ARGV, because their names depend
 * on ids only known inside Redis. That is fine on a standalone Redis (and
 * with Sentinel), not on Redis Cluster.
 *
 * @module
 */

/** Shared Lua helpers, prepended to the scripts that need them. */
const HELPERS = `
local QUEUE_INDEX = { high = 1, normal = 2, low = 3 }

-- The id and type of a queue element: the fast path matches the broker's own
-- encoding (id first, then type); anything else is decoded with cjson.
local function task_fields(raw)
  local id, ty = string.match(raw, '^{"id":"([^"\\\\]+)","type":"([^"\\\\]*)"')
  if id then return id, ty, nil end
  local ok, t = pcall(cjson.decode, raw)
  if ok and type(t) == 'table' and type(t.id) == 'string' and t.id ~= '' then
    return t.id, (type(t.type) == 'string' and t.type or ''), t
  end
  return nil, nil, nil
end

-- The queue index (1 high, 2 normal, 3 low) an element belongs to.
local function priority_of(raw)
  local p = string.match(raw, '"priority":"(%a+)"')
  if p and QUEUE_INDEX[p] then return QUEUE_INDEX[p] end
  return 2
end
`;

/**
 * Enqueues a batch of tasks, refusing it whole when an id is still held by
 * another task. A batch is all or nothing, so when one of its tasks is
 * already held with the same type and creation time, this is the same batch
 * sent again after a lost reply (a reconnect): it is acknowledged, not added
 * twice.
 *
 * KEYS: [1] queue high, [2] queue normal, [3] queue low
 * ARGV: [1] now, [2] task key prefix, [3] task key suffix,
 *       [4] capacity (most queued tasks; 0 = no limit),
 *       then 7 per task: id, priority index (1..3), body, type, attempts, created_at, pipeline
 * Returns: {"ok"}, {"again"} when this batch was already applied, {"full"} when the
 *          queues hold `capacity` tasks or more, {"duplicate", id} when an id is held
 */
export const ENQUEUE = `
local now, pre, suf, capacity = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local PRIORITY_NAMES = { 'high', 'normal', 'low' }
local seen, stale, again = {}, {}, false
for i = 5, #ARGV, 7 do
  local id = ARGV[i]
  if seen[id] then return {'duplicate', id} end
  seen[id] = true
  local held = redis.call('HMGET', pre .. id .. suf, 'state', 'type', 'created_at')
  local state = held[1]
  if state then
    if state ~= 'completed' then
      if held[2] ~= ARGV[i + 3] or held[3] ~= ARGV[i + 5] then return {'duplicate', id} end
      again = true
    else
      stale[id] = true -- a retained record of a finished life: start afresh
    end
  end
end
if again then return {'again'} end
if capacity > 0 and redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2])
    + redis.call('LLEN', KEYS[3]) >= capacity then
  return {'full'}
end
local lists = { {}, {}, {} }
for i = 5, #ARGV, 7 do
  local id, q = ARGV[i], tonumber(ARGV[i + 1])
  local l = lists[q]
  l[#l + 1] = ARGV[i + 2]
  local key = pre .. id .. suf
  if stale[id] then redis.call('DEL', key) end
  if ARGV[i + 6] ~= '' then
    redis.call('HSET', key, 'id', id, 'type', ARGV[i + 3], 'state', 'queued',
      'attempts', ARGV[i + 4], 'priority', PRIORITY_NAMES[q],
      'created_at', ARGV[i + 5], 'updated_at', now, 'pipeline', ARGV[i + 6])
  else
    redis.call('HSET', key, 'id', id, 'type', ARGV[i + 3], 'state', 'queued',
      'attempts', ARGV[i + 4], 'priority', PRIORITY_NAMES[q],
      'created_at', ARGV[i + 5], 'updated_at', now)
  end
end
for q = 1, 3 do
  local l = lists[q]
  for j = 1, #l, 1000 do
    redis.call('RPUSH', KEYS[q], unpack(l, j, math.min(j + 999, #l)))
  end
end
return {'ok'}
`;

/**
 * Reserves up to `max` tasks for a consumer: moves due retries back to their
 * queues, then moves tasks by weighted round-robin (4 high : 2 normal : 1 low)
 * into the consumer's processing list, marks them assigned and renews the
 * consumer's lease.
 *
 * KEYS: [1] queue high, [2] queue normal, [3] queue low, [4] processing list,
 *       [5] delayed zset, [6] lease, [7] consumer set
 * ARGV: [1] max, [2] now, [3] consumer key name, [4] lease ms, [5] task key prefix,
 *       [6] task key suffix, [7] schedule slot, [8] "1" when the processing list's last
 *       element was just moved there by BLMOVE and must be delivered too, [9] worker name,
 *       [10] most retries promoted per call
 * Returns: {next slot, raw element...}
 */
export const RESERVE = HELPERS + `
local max, now, pre, suf = tonumber(ARGV[1]), ARGV[2], ARGV[5], ARGV[6]
local due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, tonumber(ARGV[10]))
for _, id in ipairs(due) do
  local key = pre .. id .. suf
  local body = redis.call('HGET', key, 'body')
  if body then
    local p = QUEUE_INDEX[redis.call('HGET', key, 'priority') or 'normal'] or 2
    redis.call('RPUSH', KEYS[p], body)
    redis.call('HSET', key, 'state', 'queued', 'updated_at', now)
    redis.call('HDEL', key, 'body', 'due_at')
  end
  redis.call('ZREM', KEYS[5], id)
end

local function assign(raw)
  local id, ty, t = task_fields(raw)
  if not id then return end
  local key = pre .. id .. suf
  if t and redis.call('EXISTS', key) == 0 then
    -- A task from a foreign producer: start its record.
    redis.call('HSET', key, 'id', id, 'type', ty,
      'attempts', tonumber(t.attempts) or 0, 'created_at', tonumber(t.created_at) or now,
      'priority', (QUEUE_INDEX[t.priority or ''] and t.priority) or 'normal')
  end
  redis.call('HSET', key, 'state', 'assigned', 'worker', ARGV[9], 'updated_at', now)
end

local out = { 0 }
if ARGV[8] == '1' then
  local raw = redis.call('LINDEX', KEYS[4], -1)
  if raw then out[#out + 1] = raw; assign(raw) end
end
local schedule = { 1, 2, 1, 3, 1, 2, 1 }
local slot = tonumber(ARGV[7]) % 7
-- Queue lengths, so empty queues are passed over without a command.
local len = { redis.call('LLEN', KEYS[1]), redis.call('LLEN', KEYS[2]), redis.call('LLEN', KEYS[3]) }
while #out - 1 < max and len[1] + len[2] + len[3] > 0 do
  local q = schedule[slot + 1]
  slot = (slot + 1) % 7
  if len[q] > 0 then
    local raw = redis.call('LMOVE', KEYS[q], KEYS[4], 'LEFT', 'RIGHT')
    len[q] = len[q] - 1
    if raw then
      out[#out + 1] = raw
      assign(raw)
    end
  end
end
if len[1] + len[2] + len[3] == 0 then
  slot = 0 -- an empty broker starts the next burst with high
end
out[1] = slot
redis.call('SET', KEYS[6], '1', 'PX', ARGV[4])
redis.call('SADD', KEYS[7], ARGV[3])
return out
`;

/**
 * Marks reserved tasks running.
 *
 * KEYS: none
 * ARGV: [1] now, [2] task key prefix, [3] task key suffix, then task ids
 * Returns: number of records updated
 */
export const STARTED = `
local n = 0
for i = 4, #ARGV do
  local key = ARGV[2] .. ARGV[i] .. ARGV[3]
  if redis.call('HEXISTS', key, 'state') == 1 then
    redis.call('HSET', key, 'state', 'running', 'updated_at', ARGV[1])
    n = n + 1
  end
end
return n
`;

/**
 * Settles deliveries of one consumer. A task is found in the processing
 * list by its id (so the client never sends a task's body back), or by its
 * raw bytes when it has no id or is not UTF-8. One that is no longer there was recovered
 * after its lease expired (it is queued again or already redelivered): it is
 * left alone and reported stale.
 *
 * KEYS: [1] processing list, [2] queue high, [3] queue normal, [4] queue low,
 *       [5] delayed zset, [6] dead-letter list, [7] dead-letter sequence
 * ARGV: [1] now, [2] task key prefix, [3] task key suffix, [4] retention ms (0 deletes),
 *       [5] most dead letters kept (the oldest beyond it are dropped with their record),
 *       then 8 per settlement: outcome ("completed" | "retry" | "dead_letter" |
 *       "released"), raw element (when the id is "" or the element is not UTF-8, else ""),
 *       id, attempts, body (retry: the task to requeue; dead_letter: the dead letter
 *       without its seq), due time (retry), error JSON, priority index
 * Returns: one status per settlement: "ok" or "stale", then how many old dead letters
 *          were dropped to stay within the cap
 */
export const SETTLE = HELPERS + `
local now, pre, suf, retention = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local cap, dropped = tonumber(ARGV[5]), 0
local held = nil
local function find(id)
  if not held then
    held = {}
    for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
      local i = task_fields(raw)
      if i then
        held[i] = held[i] or {}
        table.insert(held[i], raw)
      end
    end
  end
  local list = held[id]
  if list and #list > 0 then return table.remove(list, 1) end
  return nil
end
local status, released = {}, {}
for i = 6, #ARGV, 8 do
  local outcome, raw, id, attempts = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local body, due, err = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local key = pre .. id .. suf
  if id ~= '' and raw == '' then raw = find(id) end
  if not raw or redis.call('LREM', KEYS[1], 1, raw) == 0 then
    status[#status + 1] = 'stale'
  else
    status[#status + 1] = 'ok'
    if outcome == 'completed' then
      if id ~= '' then
        if retention > 0 then
          redis.call('HSET', key, 'state', 'completed', 'attempts', attempts,
            'completed_at', now, 'updated_at', now)
          redis.call('PEXPIRE', key, retention)
        else
          redis.call('DEL', key)
        end
      end
    elseif outcome == 'retry' then
      redis.call('ZADD', KEYS[5], due, id)
      redis.call('HSET', key, 'state', 'failed', 'attempts', attempts, 'last_error', err,
        'due_at', due, 'updated_at', now, 'body', body)
    elseif outcome == 'dead_letter' then
      local seq = redis.call('INCR', KEYS[7])
      redis.call('RPUSH', KEYS[6], '{"seq":' .. seq .. ',' .. string.sub(body, 2))
      while redis.call('LLEN', KEYS[6]) > cap do
        local old = redis.call('LPOP', KEYS[6])
        local old_id = string.match(old, '"task":{"id":"([^"\\\\]+)"')
        if old_id then redis.call('DEL', pre .. old_id .. suf) end
        dropped = dropped + 1
      end
      if id ~= '' then
        redis.call('HSET', key, 'state', 'dead_letter', 'attempts', attempts,
          'last_error', err, 'dead_lettered_at', now, 'updated_at', now)
      end
    else
      released[#released + 1] = { raw, tonumber(ARGV[i + 7]), key, id }
    end
  end
end
-- Released tasks go back to the front, keeping their relative order.
for j = #released, 1, -1 do
  local r = released[j]
  redis.call('LPUSH', KEYS[1 + r[2]], r[1])
  if r[4] ~= '' then redis.call('HSET', r[3], 'state', 'queued', 'updated_at', now) end
end
status[#status + 1] = dropped
return status
`;

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
 * Puts back a task that a blocking move took for a consumer that had
 * already given up waiting (its reserve was aborted): out of the consumer's
 * processing list, back to the front of the queue it came from. The task's
 * record was never touched by the move, so it still says `queued`.
 *
 * KEYS: [1] the consumer's processing list, [2] the queue the task came from
 * ARGV: [1] the task's stored element
 * Returns: 1 when put back, 0 when the element was no longer there
 */
export const UNMOVE = `
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
`;

/**
 * thDeadLetterPage: up to `count` dead letters after a cursor, oldest first.
 * The list is in seq order (RPUSH after INCR; removals keep the order), so
 * the first element past the cursor is found by bisection.
 * KEYS: [1] dead-letter list
 * ARGV: [1] seq after which to start (-1: from the head), [2] count
 * Returns the raw elements.
 */
const DEAD_LETTER_PAGE = `
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

/** Every script by the command name it is registered under. */
export const SCRIPTS = {
  thEnqueue: ENQUEUE,
  thReserve: RESERVE,
  thStarted: STARTED,
  thSettle: SETTLE,
  thRecover: RECOVER,
  thDeadLetters: DEAD_LETTERS,
  thDeadLetterPage: DEAD_LETTER_PAGE,
  thDepth: DEPTH,
  thUnmove: UNMOVE,
} as const;

/** A registered script's name. */
export type ScriptName = keyof typeof SCRIPTS;

/**
 * The error for a script's status code, or `undefined` for success. The
 * one place that knows what the codes mean.
 */
export function scriptError(
  script: ScriptName,
  code: string,
  detail: string | undefined,
  broker: string,
): Error | undefined {
  switch (code) {
    case "ok":
    case "again":
    case "full": // the caller waits for room
      return undefined;
    case "duplicate":
      return new Error(`Task "${detail}" is already in broker "${broker}"`);
    case "stale":
      return new Error(
        `Delivery of task "${detail}" was taken back from its consumer (lease expired)`,
      );
    default:
      return new Error(`Script "${script}" of broker "${broker}" returned unknown code "${code}"`);
  }
}

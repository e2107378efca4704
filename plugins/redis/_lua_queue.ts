/**
 * The Lua scripts of the task flow: enqueue, reserve, started, settle and
 * putting back a task a consumer stopped waiting for. See `_scripts.ts` for
 * the conventions every script follows.
 *
 * @module
 */

/** Shared Lua helpers, prepended to the scripts that need them. */
export const HELPERS = `
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
      again = pre .. id .. suf
    else
      stale[id] = true -- a retained record of a finished life: start afresh
    end
  end
end
if again then
  -- A write, so that WAIT after this call also waits for the batch applied before
  -- (WAIT counts the replication offset of this connection's last write).
  redis.call('HSET', again, 'updated_at', now)
  return {'again'}
end
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
 * KEYS: [1] any key of the tasks' shard (unused: it routes the call to the right cluster node)
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

--[[ apply_plan.lua: apply a batch of plans for one merchant, each whole or not at all.

One generic script runs any plan of the closed set in commerce/plan.py (redis.py
encodes them). Plans run in order; each plan's guards are checked first, in order,
and the first that fails decides its answer; only if all hold are its writes made.
A refused plan changes nothing and does not affect the others in the batch.

Redis does not roll a script back: a write made before an error stays. So every check
a write could fail (stock or stored value below zero, a transfer id or hold that
exists, a hold that does not, an order queued twice) runs before the plan's first
write, on a simulation of the plan's effects, and the writes themselves cannot fail.
Stock columns are written once per batch, after the last plan, and also when a plan
raised (a bug), so they always match the plans whose writes were made.

KEYS: the merchant's fixed keys (the K_* indexes below, in the order of FIXED_KEYS in
redis.py), then every per-entity key the batch touches (stock, idempotency records,
order and customer indexes, fulfillment queues), referenced by index from the ops.
All carry the merchant's hash tag, so a Redis Cluster keeps a batch on one shard.

ARGV[1]: one flat msgpack array (one Lua table to build, not one per op): for each
plan, its guard count, its write count, its length, then its ops, each a code and a
fixed number of fields (GUARD_SIZE, WRITE_SIZE; each layout is commented at its code
below and built by _Batch.add in redis.py).

Returns JSON, one answer per plan:
  {0, a1, a2, ...}  applied; a_i = available after the i-th MoveStock
  {1, i}            refused by the i-th guard (redis.py maps it to a Reason)
  {2, order}        replayed: the order already accepted under the idempotency key
  {3, message}      not applied: the plan breaks a store invariant (a bug, raised)

Works on Redis 6.2+ (SET ... PXAT): TIME is the clock of record for time guards; on
Redis < 7 writes may follow TIME only under effects replication, switched on first.
]]

if redis.replicate_commands then
  redis.replicate_commands()
end

local K_BALANCE, K_HELD, K_HOLDS, K_BOUGHT, K_ORDERS = 1, 2, 3, 4, 5
local K_TRANSFERS, K_TRANSFERS_BY_TIME, K_CUSTOMER, K_EXPIRY = 6, 7, 8, 9
local K_OUTBOX, K_STOCK_INDEX, K_QUEUE_POS = 10, 11, 12
local GROUP = 'fulfillment'
local GUARD_SIZE = {3, 3, 4, 3, 3, 2, 2}  -- code and fields, by code
local WRITE_SIZE = {7, 4, 4, 8, 3, 11, 4, 5, 3, 2, 3, 3, 2}

local A = cmsgpack.unpack(ARGV[1])

local now_ms = nil
local function clock()
  if now_ms == nil then
    local t = redis.call('TIME')
    now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now_ms
end

local function num(reply)
  return tonumber(reply) or 0  -- a missing field (false) counts as 0
end

-- Stock columns {received, available, reserved, sold} by key index, read once per
-- batch and written once per batch (a hot SKU's hash once, not once per plan).
local stock_cache = {}
local stock_dirty = {}
local function stock_of(k)
  local s = stock_cache[k]
  if s == nil then
    local v = redis.call('HMGET', KEYS[k], 'received', 'available', 'reserved', 'sold')
    s = {num(v[1]), num(v[2]), num(v[3]), num(v[4])}
    stock_cache[k] = s
  end
  return s
end

local queue_ready = {}  -- queue key index -> the stream and its group exist

-- The outbox's entry ids are 0-<seq>: the last one given is read once per batch (no
-- counter key to keep in step with the stream).
local outbox_seq = nil
local function next_outbox_seq()
  if outbox_seq == nil then
    outbox_seq = 0
    if redis.call('EXISTS', KEYS[K_OUTBOX]) == 1 then
      local info = redis.call('XINFO', 'STREAM', KEYS[K_OUTBOX])
      for f = 1, #info, 2 do
        if info[f] == 'last-generated-id' then
          outbox_seq = tonumber(string.match(info[f + 1], '%-(%d+)$'))
        end
      end
    end
  end
  outbox_seq = outbox_seq + 1
  return outbox_seq
end

-- Guard at A[i]: true if it holds; a table answer for a replay; false if it fails.
local function holds(i)
  local code = A[i]
  if code == 1 then  -- KeyUnseen: k_record, digest (the record is "<order> <digest>")
    local rec = redis.call('GET', KEYS[A[i + 1]])
    if not rec then
      return true
    end
    local space = string.find(rec, ' ', 1, true)
    if string.sub(rec, space + 1) == A[i + 2] then
      return {2, string.sub(rec, 1, space - 1)}
    end
    return false
  elseif code == 2 then  -- StockAtLeast: k_stock, qty
    return stock_of(A[i + 1])[2] >= A[i + 2]
  elseif code == 3 then  -- BalanceAtLeast: account, shopper, amount
    local balance = num(redis.call('HGET', KEYS[K_BALANCE], A[i + 1]))
    local held = num(redis.call('HGET', KEYS[K_HELD], A[i + 2]))
    return balance - held >= A[i + 3]
  elseif code == 4 then  -- BoughtAtMost: "shopper|sku", qty
    return num(redis.call('HGET', KEYS[K_BOUGHT], A[i + 1])) <= A[i + 2]
  elseif code == 5 then  -- OrderInState: order, state
    return redis.call('HGET', KEYS[K_ORDERS], 'state:' .. A[i + 1]) == A[i + 2]
  elseif code == 6 then  -- BeforeTime: deadline_ms
    return clock() < A[i + 1]
  elseif code == 7 then  -- NotBeforeTime: due_ms
    return clock() >= A[i + 1]
  end
  error('unknown guard ' .. tostring(code))
end

-- Simulates the writes at A[first..] on stock and stored value. Returns the stock
-- columns after the plan (by key index) and the available count after each MoveStock,
-- or nil and why the plan cannot be applied.
local function simulate(first, count)
  local stock, after = {}, {}
  local balance, held, holds_of, transfers = {}, {}, {}, {}
  local i = first
  for _ = 1, count do
    local code = A[i]
    if code == 1 then  -- MoveStock
      local k = A[i + 1]
      local s = stock[k]
      if s == nil then
        local c = stock_of(k)
        s = {c[1], c[2], c[3], c[4]}
        stock[k] = s
      end
      for c = 1, 4 do
        s[c] = s[c] + A[i + 1 + c]
        if s[c] < 0 then
          return nil, 'stock would go below zero: ' .. KEYS[k]
        end
      end
      after[#after + 1] = s[2]
    elseif code == 2 or code == 3 then  -- HoldStoredValue / ReleaseHold
      local shopper, order, amount = A[i + 1], A[i + 2], A[i + 3]
      if held[shopper] == nil then
        held[shopper] = num(redis.call('HGET', KEYS[K_HELD], shopper))
      end
      if holds_of[order] == nil then
        holds_of[order] = num(redis.call('HGET', KEYS[K_HOLDS], order))
      end
      if code == 2 then
        if holds_of[order] ~= 0 then
          return nil, 'order already holds stored value: ' .. order
        end
        holds_of[order] = amount
        held[shopper] = held[shopper] + amount
      else
        if holds_of[order] ~= amount then
          return nil, 'no hold of ' .. amount .. ' for order ' .. order
        end
        holds_of[order] = 0
        held[shopper] = held[shopper] - amount
      end
    elseif code == 4 then  -- PostTransfer
      local id, debit, credit, amount, shopper = A[i + 1], A[i + 2], A[i + 3], A[i + 4], A[i + 7]
      if transfers[id] or redis.call('HEXISTS', KEYS[K_TRANSFERS], id) == 1 then
        return nil, 'transfer exists: ' .. id
      end
      transfers[id] = true
      if balance[debit] == nil then
        balance[debit] = num(redis.call('HGET', KEYS[K_BALANCE], debit))
      end
      if balance[credit] == nil then
        balance[credit] = num(redis.call('HGET', KEYS[K_BALANCE], credit))
      end
      balance[debit] = balance[debit] - amount
      balance[credit] = balance[credit] + amount
      if shopper ~= '' then  -- stored value never goes below what it holds
        if held[shopper] == nil then
          held[shopper] = num(redis.call('HGET', KEYS[K_HELD], shopper))
        end
        if balance[debit] < held[shopper] then
          return nil, 'stored value would go below what it holds: ' .. debit
        end
      end
    elseif code == 11 then  -- EnqueueFulfillment
      if redis.call('HEXISTS', KEYS[K_QUEUE_POS], A[i + 2]) == 1 then
        return nil, 'order already queued: ' .. A[i + 2]
      end
    end
    i = i + WRITE_SIZE[code]
  end
  return stock, after
end

local function write(i)
  local code = A[i]
  if code == 1 then  -- MoveStock: k_stock, d_received, d_available, d_reserved, d_sold, member
    if A[i + 6] ~= '' then  -- the columns are written after the batch
      redis.call('SADD', KEYS[K_STOCK_INDEX], A[i + 6])
    end
  elseif code == 2 then  -- HoldStoredValue: shopper, order, amount
    redis.call('HSET', KEYS[K_HOLDS], A[i + 2], A[i + 3])
    redis.call('HINCRBY', KEYS[K_HELD], A[i + 1], A[i + 3])
  elseif code == 3 then  -- ReleaseHold: shopper, order, amount
    redis.call('HDEL', KEYS[K_HOLDS], A[i + 2])
    if redis.call('HINCRBY', KEYS[K_HELD], A[i + 1], -A[i + 3]) == 0 then
      redis.call('HDEL', KEYS[K_HELD], A[i + 1])
    end
  elseif code == 4 then  -- PostTransfer: id, debit, credit, amount, at_ms, body, debit_shopper
    redis.call('HSET', KEYS[K_TRANSFERS], A[i + 1], A[i + 6])
    redis.call('ZADD', KEYS[K_TRANSFERS_BY_TIME], A[i + 5], A[i + 1])
    redis.call('HINCRBY', KEYS[K_BALANCE], A[i + 2], -A[i + 4])
    redis.call('HINCRBY', KEYS[K_BALANCE], A[i + 3], A[i + 4])
  elseif code == 5 then  -- CountBought: "shopper|sku", qty
    redis.call('HINCRBY', KEYS[K_BOUGHT], A[i + 1], A[i + 2])
  elseif code == 6 then
    -- PutOrder: id, state, body, placed_at_ms, k_selling, k_fulfilling, k_shopper,
    -- k_pickup (0: not a pickup order), "<code>:<order>", awaits pickup (1 or 0)
    local id, placed = A[i + 1], A[i + 4]
    if redis.call('HSET', KEYS[K_ORDERS], id, A[i + 3], 'state:' .. id, A[i + 2]) == 2 then
      redis.call('ZADD', KEYS[A[i + 5]], placed, id)  -- new: index it once
      if A[i + 6] ~= A[i + 5] then
        redis.call('ZADD', KEYS[A[i + 6]], placed, id)
      end
      redis.call('ZADD', KEYS[A[i + 7]], placed, id)
    end
    if A[i + 8] ~= 0 then  -- the counter finds waiting orders by code (ZRANGEBYLEX)
      if A[i + 10] == 1 then
        redis.call('ZADD', KEYS[A[i + 8]], 0, A[i + 9])
      else
        redis.call('ZREM', KEYS[A[i + 8]], A[i + 9])
      end
    end
  elseif code == 7 then  -- RememberKey: k_record, "<order> <digest>", expires_at_ms
    redis.call('SET', KEYS[A[i + 1]], A[i + 2], 'PXAT', A[i + 3])
  elseif code == 8 then  -- AttributeCustomer: shopper, branch, at_ms, k_customers
    if redis.call('HSETNX', KEYS[K_CUSTOMER], A[i + 1], A[i + 2]) == 1 then
      redis.call('ZADD', KEYS[A[i + 4]], A[i + 3], A[i + 1])
    end
  elseif code == 9 then  -- ScheduleExpiry: order, due_ms
    redis.call('ZADD', KEYS[K_EXPIRY], A[i + 2], A[i + 1])
  elseif code == 10 then  -- CancelExpiry: order
    redis.call('ZREM', KEYS[K_EXPIRY], A[i + 1])
  elseif code == 11 then  -- EnqueueFulfillment: k_queue, order
    local k = A[i + 1]
    if not queue_ready[k] then
      if redis.call('EXISTS', KEYS[k]) == 0 then
        redis.call('XGROUP', 'CREATE', KEYS[k], GROUP, '0', 'MKSTREAM')
      end
      queue_ready[k] = true
    end
    local id = redis.call('XADD', KEYS[k], '*', 'order', A[i + 2])
    redis.call('HSET', KEYS[K_QUEUE_POS], A[i + 2], id)
  elseif code == 12 then  -- AckFulfillment: k_queue, order
    local id = redis.call('HGET', KEYS[K_QUEUE_POS], A[i + 2])
    if id then
      redis.call('XACK', KEYS[A[i + 1]], GROUP, id)
      redis.call('XDEL', KEYS[A[i + 1]], id)
      redis.call('HDEL', KEYS[K_QUEUE_POS], A[i + 2])
    end
  elseif code == 13 then  -- AppendOutbox: body
    redis.call('XADD', KEYS[K_OUTBOX], '0-' .. next_outbox_seq(), 'event', A[i + 1])
  end
  return i + WRITE_SIZE[code]
end

-- The plan at A[i]: guard count, write count, its length, then its ops. Returns its
-- answer and where the next plan starts.
local function apply(i)
  local guard_count, write_count, next_plan = A[i], A[i + 1], i + A[i + 2]
  i = i + 3
  for g = 1, guard_count do
    local verdict = holds(i)
    if verdict == false then
      return {1, g}, next_plan
    elseif verdict ~= true then
      return verdict, next_plan
    end
    i = i + GUARD_SIZE[A[i]]
  end
  local stock, after = simulate(i, write_count)
  if stock == nil then
    return {3, after}, next_plan
  end
  for _ = 1, write_count do
    i = write(i)
  end
  for k, s in pairs(stock) do
    stock_cache[k] = s
    stock_dirty[k] = true
  end
  local answer = {0}
  for n, available in ipairs(after) do
    answer[n + 1] = available
  end
  return answer, next_plan
end

local answers = {}
local ok, failure = pcall(function()
  local i, size = 1, #A
  while i <= size do
    local answer
    answer, i = apply(i)
    answers[#answers + 1] = answer
  end
end)
for k in pairs(stock_dirty) do
  local s = stock_cache[k]
  redis.call('HSET', KEYS[k], 'received', s[1], 'available', s[2], 'reserved', s[3], 'sold', s[4])
end
if not ok then
  error(failure)
end
return cjson.encode(answers)

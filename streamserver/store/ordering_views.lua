--[[ ordering_views.lua: the ordering views of a batch of purchases for one merchant.

A purchase reads its view before the core plans it. Read one by one, each view was two
pipelines (the branches must be known to name the stock keys), and redis-py's client
CPU per call, not Redis, was the limit. The views of one loop tick are read here in
one call instead. Read only: this script writes nothing.

KEYS: 1 branches (hash), 2 merchant (hash), 3 skus (hash), 4 offers (hash), 5 bought
(hash), then one stock hash per (branch, SKU) the caller expects, branch-major, in the
order of the branch ids it passes. The caller learns the branches from the first reply;
if they changed since, it asks again with the right stock keys.

ARGV: n, then the n SKU ids of the batch, then for each purchase: its count of
"shopper|sku" fields, then those fields.

Returns {branches (HGETALL, flat), terms, skus (HMGET), offers (HMGET), levels (one
per stock key: "available" or false), bought (per purchase, HMGET)}.
]]

local n = tonumber(ARGV[1])
local skus = {}
for i = 1, n do
  skus[i] = ARGV[1 + i]
end

local sku_bodies, offer_bodies = {}, {}
if n > 0 then
  sku_bodies = redis.call('HMGET', KEYS[3], unpack(skus))
  offer_bodies = redis.call('HMGET', KEYS[4], unpack(skus))
end

local levels = {}
for k = 6, #KEYS do
  levels[#levels + 1] = redis.call('HGET', KEYS[k], 'available')
end

local bought = {}
local i = 2 + n
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  local fields = {}
  for j = 1, count do
    fields[j] = ARGV[i + j]
  end
  if count > 0 then
    bought[#bought + 1] = redis.call('HMGET', KEYS[5], unpack(fields))
  else
    bought[#bought + 1] = {}
  end
  i = i + count + 1
end

return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('HGET', KEYS[2], 'terms'),
  sku_bodies,
  offer_bodies,
  levels,
  bought,
}

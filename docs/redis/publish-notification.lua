-- Tickwire: store a notification and publish it, atomically, with one id for both.
-- The same script `tickwire serve` and `tickwire publish` run (a test keeps them identical).
--
-- KEYS[1]  notifications:stream:USER_ID   (with your --redis-prefix in front;
--          on a Redis Cluster notifications:stream:{USER_ID}, braces included)
-- KEYS[2]  notifications:USER_ID           (on a Redis Cluster notifications:{USER_ID})
-- ARGV[1]  event: transaction_update | balance_update | notification
-- ARGV[2]  data: the event's data, a JSON object (see docs/PROTOCOL.md section 4)
-- ARGV[3]  timestamp: when it was published, RFC 3339 UTC (2026-11-29T10:30:00.123Z)
-- ARGV[4]  events kept per user (1000)
-- ARGV[5]  retention in milliseconds (604800000: 7 days)
-- ARGV[6]  optional: sharded on a Redis Cluster (publishes with SPUBLISH)
-- Returns the event id. Requires Redis 7.0 or later.
local event, data, timestamp = ARGV[1], ARGV[2], ARGV[3]
if event ~= 'transaction_update' and event ~= 'balance_update' and event ~= 'notification' then
  return redis.error_reply('ERR event must be transaction_update, balance_update or notification')
end
local ok, decoded = pcall(cjson.decode, data)
if not ok or type(decoded) ~= 'table' or not string.match(data, '^%s*{') then
  return redis.error_reply('ERR data must be a JSON object')
end
if not string.match(timestamp, '^[0-9T:.+Z-]+$') then
  return redis.error_reply('ERR timestamp must be RFC 3339')
end
local capacity, retention = tonumber(ARGV[4]), tonumber(ARGV[5])
local id = redis.call('XADD', KEYS[1], '*', 'event', event, 'data', data, 'timestamp', timestamp)
-- Trim by count and by age, and record the newest id removed: Redis 7 tracks
-- max-deleted-entry-id for XDEL but not for trimming, and replay needs it.
local removed = nil
local excess = redis.call('XLEN', KEYS[1]) - capacity
if excess > 0 then
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
  removed = oldest[#oldest][1]
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', capacity)
end
local now = redis.call('TIME')
local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - retention
if cutoff > 0 then
  local aged = redis.call('XREVRANGE', KEYS[1], '(' .. cutoff, '-', 'COUNT', 1)
  if #aged > 0 then
    removed = aged[1][1]
    redis.call('XTRIM', KEYS[1], 'MINID', cutoff)
  end
end
if not removed and redis.call('XLEN', KEYS[1]) == 1 then
  -- A new stream (first event, or the old one expired): nothing before it can be vouched for.
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if seq ~= '0' then removed = ms .. '-' .. (tonumber(seq) - 1)
  elseif tonumber(ms) > 0 then removed = (tonumber(ms) - 1) .. '-18446744073709551615' end
end
if removed then redis.call('XSETID', KEYS[1], id, 'MAXDELETEDID', removed) end
redis.call('PEXPIRE', KEYS[1], retention)
local publish = ARGV[6] == 'sharded' and 'SPUBLISH' or 'PUBLISH'
redis.call(publish, KEYS[2], '{"id":"' .. id .. '","event":"' .. event .. '","data":' .. data .. ',"timestamp":"' .. timestamp .. '"}')
return id


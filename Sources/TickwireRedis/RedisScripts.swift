import RESP

/// The Lua scripts Tickwire runs in Redis. Each is one atomic step.
public enum RedisScripts {
    /// Records a price as the symbol's latest and publishes it.
    /// KEYS: latest hash, price channel. ARGV: symbol, price JSON.
    public static let publishPrice = RedisScript("""
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        return redis.call('PUBLISH', KEYS[2], ARGV[2])
        """)

    /// On a cluster: records a price under the symbol's own key and publishes it on its shard.
    /// KEYS: latest price key, price channel (one hash tag). ARGV: price JSON.
    public static let publishPriceSharded = RedisScript("""
        redis.call('SET', KEYS[1], ARGV[1])
        return redis.call('SPUBLISH', KEYS[2], ARGV[1])
        """)

    /// Stores a notification in the user's stream (capped, trimmed by age, expiring with
    /// the stream's last event; the newest id trimmed is kept as the stream's
    /// max-deleted-entry-id), then publishes it with the stream id the store assigned,
    /// so live delivery and replay agree on ids. Returns the id.
    /// KEYS: stream, channel. ARGV: event, data (a JSON object), timestamp (RFC 3339),
    /// capacity (events kept), retention (milliseconds), and `sharded` on a Redis Cluster
    /// (SPUBLISH: the channel shares the stream's hash tag).
    ///
    /// Any backend may call it (EVALSHA, or EVAL with this source); it checks its input.
    public static let publishNotification = RedisScript("""
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
        """)

    /// The stored events after an id, and whether nothing after it was trimmed.
    /// KEYS: stream. ARGV: since (exclusive), most events.
    /// Returns {exists (0/1), max-deleted-entry-id, entries}. Needs Redis 7 (`max-deleted-entry-id`).
    public static let replay = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 0 then return {0, '0-0', {}} end
        local info = redis.call('XINFO', 'STREAM', KEYS[1])
        local deleted = '0-0'
        for i = 1, #info, 2 do
          if info[i] == 'max-deleted-entry-id' then deleted = info[i + 1] end
        end
        return {1, deleted, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
        """)

    /// Extends a lock's lifetime if this holder still owns it. KEYS: lock. ARGV: holder, ttl ms.
    public static let renewLock = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        return 0
        """)

    /// Deletes a lock if this holder owns it. KEYS: lock. ARGV: holder.
    public static let releaseLock = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)
}

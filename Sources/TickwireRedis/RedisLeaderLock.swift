import RESP
import TickwireCore

/// A lock with a time to live in Redis: `SET NX PX` to take it, a script to extend
/// it only while this holder owns it, a script to give it back.
public struct RedisLeaderLock: LeaderLock {
    let client: any RedisCommands
    let key: String

    public init(client: any RedisCommands, key: String) {
        self.client = client
        self.key = key
    }

    public func acquire(holder: String, ttl: Duration) async throws -> Bool {
        let reply = try await client.send(RESPCommand("SET", [key, holder, "NX", "PX", String(ttl.milliseconds)]), key: key)
        return reply.string == "OK"
    }

    public func renew(holder: String, ttl: Duration) async throws -> Bool {
        try await client.evaluate(RedisScripts.renewLock, keys: [key], arguments: [holder, String(ttl.milliseconds)]).int == 1
    }

    public func release(holder: String) async throws {
        _ = try await client.evaluate(RedisScripts.releaseLock, keys: [key], arguments: [holder])
    }
}

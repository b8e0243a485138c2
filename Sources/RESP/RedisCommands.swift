/// A client that runs commands and scripts: on one server (`RedisClient`, behind Sentinel or not)
/// or on a cluster (`RedisClusterClient`, which routes each by the slot of its first key).
public protocol RedisCommands: Sendable {
    /// Sends a command about `key` (nil: any server will do); an error reply throws `RedisError.server`.
    func send(_ command: RESPCommand, key: String?, timeout: Duration?) async throws -> RESPValue

    /// Runs a script (EVALSHA, EVAL when not cached), then with `replicas` > 0 `WAIT`s for that many
    /// replicas (`RedisError.notReplicated` when too few confirm within `replicaTimeout`).
    func evaluate(_ script: RedisScript, keys: [String], arguments: [String], replicas: Int, replicaTimeout: Duration)
        async throws -> RESPValue

    func shutdown() async
}

extension RedisCommands {
    @discardableResult
    public func send(_ command: RESPCommand, key: String?) async throws -> RESPValue {
        try await send(command, key: key, timeout: nil)
    }

    public func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RESPValue {
        try await evaluate(script, keys: keys, arguments: arguments, replicas: 0, replicaTimeout: .seconds(1))
    }
}

extension RedisClient: RedisCommands {
    public func send(_ command: RESPCommand, key: String?, timeout: Duration?) async throws -> RESPValue {
        try await send(command, timeout: timeout)
    }
}

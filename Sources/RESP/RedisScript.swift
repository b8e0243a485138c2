import Crypto

/// A Lua script, run by its SHA1 (`EVALSHA`) and sent whole only when the server
/// does not have it cached (`NOSCRIPT`: after a restart, a failover or SCRIPT FLUSH).
public struct RedisScript: Sendable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
    }
}

extension RedisConnection {
    /// Runs a script: EVALSHA, and EVAL when the server does not have it cached (each after
    /// `ASKING` when `asking`). With `replicas` > 0 it then sends `WAIT replicas timeout` and
    /// throws `RedisError.notReplicated` when fewer replicas confirmed the write in time.
    /// An error reply throws `RedisError.server`.
    public func evaluate(
        _ script: RedisScript, keys: [String], arguments: [String], replicas: Int = 0,
        replicaTimeout: Duration = .seconds(1), asking: Bool = false
    ) async throws -> RESPValue {
        let tail = [String(keys.count)] + keys + arguments
        func run(_ command: RESPCommand) async throws -> RESPValue {
            asking ? try await sendRawAsking(command) : try await sendRaw(command)
        }
        var reply = try await run(RESPCommand("EVALSHA", [script.sha1] + tail))
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            reply = try await run(RESPCommand("EVAL", [script.source] + tail))
        }
        if case .error(let message) = reply { throw RedisError.server(message) }
        if replicas > 0 {
            let waited = try await send(
                RESPCommand("WAIT", [String(replicas), String(replicaTimeout.milliseconds)]),
                timeout: replicaTimeout + configuration.commandTimeout)
            let confirmed = Int(waited.int ?? 0)
            if confirmed < replicas { throw RedisError.notReplicated(confirmed: confirmed, wanted: replicas) }
        }
        return reply
    }
}

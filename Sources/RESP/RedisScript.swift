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

/// What can go wrong talking to Redis.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered with an error reply.
    case server(String)
    /// No reply before the command's deadline; the connection was closed, since later replies can no longer be matched.
    case timeout
    /// The connection closed before the reply arrived.
    case connectionClosed
    /// Redis could not be reached; the client waits before trying again.
    case unavailable(String)
    /// The server sent bytes that are not RESP.
    case protocolError(String)
    /// A reply of an unexpected shape.
    case unexpectedReply(String)
    /// `WAIT` confirmed the write on fewer replicas than asked in time; the master has it.
    case notReplicated(confirmed: Int, wanted: Int)

    public var description: String {
        switch self {
        case .server(let message): "Redis error: \(message)"
        case .timeout: "Redis did not answer in time"
        case .connectionClosed: "the Redis connection closed"
        case .unavailable(let reason): "Redis unavailable: \(reason)"
        case .protocolError(let reason): "Redis protocol error: \(reason)"
        case .unexpectedReply(let reason): "unexpected Redis reply: \(reason)"
        case .notReplicated(let confirmed, let wanted): "the write reached \(confirmed) of \(wanted) replicas in time"
        }
    }
}

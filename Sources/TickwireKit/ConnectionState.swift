/// Where the client's connection stands (docs/CLIENTS.md section 7).
public enum ConnectionState: Sendable, Equatable, CustomStringConvertible {
    /// Opening a WebSocket, or waiting for the gateway's `connected`.
    case connecting
    /// The gateway accepted the token.
    case connected(userID: String, connectionID: String)
    /// The connection was lost; the next attempt comes after `delay`.
    case reconnecting(Reconnecting)
    /// Not connected and not trying; see `reason`.
    case closed(Closed)

    public struct Reconnecting: Sendable, Equatable {
        public enum Cause: String, Sendable {
            /// The server closed the connection (see `code`).
            case close
            /// The link failed: refused, reset, or the upgrade failed.
            case network
            /// Nothing arrived for 45 s, or a liveness check after `resume()`/`retryNow()` went unanswered.
            case heartbeat
            /// The token provider threw or did not answer.
            case token
        }

        public var delay: Duration
        /// Failed attempts in a row, this one included.
        public var attempt: Int
        public var cause: Cause
        /// The close code, when the server sent one (1006 for a link that just ended).
        public var code: UInt16?
        public var error: TickwireError?
    }

    public struct Closed: Sendable, Equatable {
        public enum Reason: String, Sendable {
            /// `close()`: the client is finished, every stream has ended.
            case client
            /// `suspend()`: `resume()` connects again.
            case suspended
            /// The server closed with 1000; `connect()` opens again.
            case server
            /// The token was refused (three times in a row, or once for a fixed token); `connect()` starts over.
            case unauthorized
        }

        public var reason: Reason
        public var code: UInt16?
        public var error: TickwireError?
    }

    public var isConnected: Bool {
        if case .connected = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .connecting: "connecting"
        case .connected(let userID, let connectionID): "connected user=\(userID) connection=\(connectionID)"
        case .reconnecting(let r):
            "reconnecting in \(r.delay.formattedSeconds) (attempt \(r.attempt), \(r.cause.rawValue)\(r.code.map { " \($0)" } ?? ""))"
                + (r.error.map { ": \($0)" } ?? "")
        case .closed(let c): "closed (\(c.reason.rawValue)\(c.code.map { " \($0)" } ?? ""))" + (c.error.map { ": \($0)" } ?? "")
        }
    }
}

extension Duration {
    var formattedSeconds: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return "\(milliseconds / 1000).\(String(format3(milliseconds % 1000))) s"
    }

    private func format3(_ value: Int64) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, 3 - text.count)) + text
    }

    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}

/// How the client reaches a gateway: anything that opens a WebSocket, sends text frames and reports
/// what arrives. `NIOWebSocketTransport` is the default; tests pass their own, and an app may wrap
/// its platform's WebSocket (`URLSessionWebSocketTask`, say) in one.
public protocol WebSocketTransport: Sendable {
    /// Opens a WebSocket to `endpoint` with the extra request `headers` (the token, when it travels
    /// in the `Authorization` header). Throws when the connection or the upgrade fails.
    func connect(to endpoint: WebSocketEndpoint, headers: [(String, String)]) async throws -> any WebSocketConnection
}

/// One open WebSocket.
public protocol WebSocketConnection: Sendable {
    /// What arrives, in order. Ends after `.closed`, which always comes exactly once: with the
    /// peer's close code, or 1006 when the link ended without a close frame.
    var events: AsyncStream<TransportEvent> { get }
    /// Queues one text frame; frames go out in the order of the calls.
    func send(_ text: String)
    /// Sends a close frame with `code` and ends the connection.
    func close(code: UInt16)
}

public enum TransportEvent: Sendable, Equatable {
    case text(String)
    /// A control frame (ping, pong) or a binary message: proof the server is alive, nothing to read.
    case alive
    /// The connection ended: the close frame's code (1005 when it had none), or 1006 without one.
    case closed(code: UInt16, reason: String)
}

/// Where a WebSocket goes: `ws` or `wss`, host, port, and the request target (path and query).
public struct WebSocketEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var usesTLS: Bool
    public var host: String
    public var port: Int
    /// Path and query, `/ws?token=...`.
    public var target: String

    public init(usesTLS: Bool, host: String, port: Int, target: String) {
        self.usesTLS = usesTLS
        self.host = host
        self.port = port
        self.target = target
    }

    public var description: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(usesTLS ? "wss" : "ws")://\(hostPart):\(port)\(target)"
    }
}

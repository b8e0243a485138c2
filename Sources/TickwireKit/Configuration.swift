/// Why the client asks the token provider for a token.
public enum TokenReason: String, Sendable {
    /// A new connection.
    case connect
    /// The current token expires soon; the new one is sent with `auth` on the open connection.
    case refresh
    /// The gateway refused the last token (close 4001): do not answer from a cache.
    case refused
}

extension TickwireClient {
    /// Everything but the URL and the token has a default that suits an app.
    public struct Configuration: Sendable {
        /// How the token reaches the gateway.
        public enum TokenTransport: Sendable {
            /// `Authorization: Bearer TOKEN` on the upgrade request (the default: it stays out of URL logs).
            case header
            /// `?token=TOKEN` on the URL.
            case query
            /// `{"action":"auth","token":...}` as the first frame.
            case firstMessage
        }

        public var tokenTransport: TokenTransport = .header
        public var transport: any WebSocketTransport = NIOWebSocketTransport()
        /// Where the last notification id is kept: memory by default (catches up across reconnects);
        /// `UserDefaultsNotificationIDStore()` on Apple platforms catches up across relaunches too.
        public var notificationIDStore: any NotificationIDStore = InMemoryNotificationIDStore()
        public var backoff = Backoff()
        /// Sent as a ping this often once connected (the gateway's `heartbeat_interval_ms` wins).
        public var pingInterval: Duration = .seconds(30)
        /// A connection that received no frame for this long is dead.
        public var silenceTimeout: Duration = .seconds(45)
        /// How long `resume()` and `retryNow()` wait for an answer to their ping.
        public var livenessTimeout: Duration = .seconds(5)
        /// The least wait after a 1008 close (rate limit, connection limit).
        public var policyCloseWait: Duration = .seconds(60)
        public var clock: any TickwireClock = SystemClock()
        /// Draws in `[0, 1)` for the backoff's jitter.
        public var random: @Sendable () -> Double = { Double.random(in: 0..<1) }

        public init() {}
    }
}

enum TokenSource: Sendable {
    case fixed(String)
    case provider(@Sendable (TokenReason) async throws -> String)
}

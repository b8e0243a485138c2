import CoreMetrics
import NIOCore
import TickwireProtocol

/// The gateway's metrics, created once through swift-metrics (the executable installs
/// a Prometheus factory). Hot-path counts are added up per drain, not per frame.
public final class GatewayMetrics: Sendable {
    let connectionsActive: Gauge
    let socketsOpenGauge: Gauge
    let connects: Counter
    let reconnects: Counter
    let refusedByReason: [ConnectionRefusal: Counter]
    let slowConsumerCloses: Counter
    let sentByEvent: [String: Counter]
    let receivedByAction: [String: Counter]
    let errorsByCode: [ErrorCode: Counter]
    let closesByCode: [UInt16: Counter]
    let otherCloses: Counter
    let priceDeliveryLatency: Timer
    let notificationDeliveryLatency: Timer
    let inboxDepth: [Gauge]
    let inboxDroppedPrices: Counter
    let inboxDroppedNotifications: Counter
    public let brokerLag: Timer
    public let brokerReconnects: Counter
    public let droppedMessages: Counter

    static let events = [
        "connected", "price_update", "price_batch", "transaction_update", "balance_update", "notification", "pong",
        "subscribed", "unsubscribed", "authenticated", "error",
    ]
    static let actions = ["subscribe", "unsubscribe", "ping", "auth", "invalid", "binary"]
    static let closeCodes: [UInt16] = [
        1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 4001, 4008, 4009,
    ]

    public init(brokerName: String = "memory", loops: Int = 1) {
        inboxDepth = (0..<loops).map { Gauge(label: "tickwire_loop_inbox_depth", dimensions: [("loop", String($0))]) }
        inboxDroppedPrices = Counter(label: "tickwire_loop_inbox_dropped_total", dimensions: [("kind", "price")])
        inboxDroppedNotifications = Counter(label: "tickwire_loop_inbox_dropped_total", dimensions: [("kind", "notification")])
        connectionsActive = Gauge(label: "tickwire_connections_active")
        socketsOpenGauge = Gauge(label: "tickwire_sockets_open")
        connects = Counter(label: "tickwire_connects_total")
        reconnects = Counter(label: "tickwire_reconnects_total")
        refusedByReason = Dictionary(uniqueKeysWithValues: ConnectionRefusal.allCases.map {
            ($0, Counter(label: "tickwire_connections_refused_total", dimensions: [("reason", $0.rawValue)]))
        })
        slowConsumerCloses = Counter(label: "tickwire_slow_consumer_closes_total")
        sentByEvent = Dictionary(uniqueKeysWithValues: Self.events.map {
            ($0, Counter(label: "tickwire_messages_sent_total", dimensions: [("event", $0)]))
        })
        receivedByAction = Dictionary(uniqueKeysWithValues: Self.actions.map {
            ($0, Counter(label: "tickwire_messages_received_total", dimensions: [("action", $0)]))
        })
        errorsByCode = Dictionary(uniqueKeysWithValues: ErrorCode.allCases.map {
            ($0, Counter(label: "tickwire_errors_total", dimensions: [("code", $0.rawValue)]))
        })
        closesByCode = Dictionary(uniqueKeysWithValues: Self.closeCodes.map {
            ($0, Counter(label: "tickwire_disconnects_total", dimensions: [("code", String($0))]))
        })
        otherCloses = Counter(label: "tickwire_disconnects_total", dimensions: [("code", "other")])
        priceDeliveryLatency = Timer(label: "tickwire_delivery_latency_seconds", dimensions: [("kind", "price")])
        notificationDeliveryLatency = Timer(
            label: "tickwire_delivery_latency_seconds", dimensions: [("kind", "notification")])
        brokerLag = Timer(label: "tickwire_broker_lag_seconds", dimensions: [("broker", brokerName)])
        brokerReconnects = Counter(label: "tickwire_broker_reconnects_total", dimensions: [("broker", brokerName)])
        droppedMessages = Counter(label: "tickwire_broker_dropped_messages_total", dimensions: [("broker", brokerName)])
    }

    /// A WebSocket handshake completed on `/ws` (whether or not the connection is then admitted).
    public func webSocketOpened() { connects.increment() }

    /// A connection became a session; a reconnect is a user back within a minute.
    public func sessionStarted(isReconnect: Bool) {
        if isReconnect { reconnects.increment() }
    }

    public func activeConnections(_ count: Int) { connectionsActive.record(count) }

    public func socketsOpen(_ count: Int) { socketsOpenGauge.record(count) }

    /// Counted when the close is decided (our close frame, the peer's, or a failure), not when
    /// the socket finally goes: a client that never answers our close is counted at once.
    public func disconnected(code: UInt16) {
        (closesByCode[code] ?? otherCloses).increment()
    }

    public func refused(_ reason: ConnectionRefusal) { refusedByReason[reason]?.increment() }

    /// A client over its pending-bytes bound is being closed with 4009.
    public func slowConsumerClosing() { slowConsumerCloses.increment() }

    public func sent(_ message: ServerMessage) {
        sentByEvent[message.eventName]?.increment()
        if case .error(let violation, _) = message { errorsByCode[violation.code]?.increment() }
    }

    public func received(action: String) {
        receivedByAction[action]?.increment()
    }

    public func countBroadcastFrames(prices: Int, notifications: Int) {
        if prices > 0 { sentByEvent["price_update"]?.increment(by: Int64(prices)) }
        if notifications > 0 { sentByEvent["notification"]?.increment(by: Int64(notifications)) }
    }

    /// At each drain: how many deliveries the loop found waiting, and what its bound dropped.
    func recordInbox(loop: Int, depth: Int, droppedPrices: Int, droppedNotifications: Int) {
        if loop < inboxDepth.count { inboxDepth[loop].record(depth) }
        if droppedPrices > 0 { inboxDroppedPrices.increment(by: Int64(droppedPrices)) }
        if droppedNotifications > 0 { inboxDroppedNotifications.increment(by: Int64(droppedNotifications)) }
    }

    func recordPriceDelivery(since releasedAt: NIODeadline) {
        priceDeliveryLatency.recordNanoseconds(Int64((NIODeadline.now() - releasedAt).nanoseconds))
    }

    func recordNotificationDelivery(since publishedAt: Timestamp) {
        let milliseconds = Timestamp.now().millisecondsSinceEpoch - publishedAt.millisecondsSinceEpoch
        notificationDeliveryLatency.recordNanoseconds(max(0, milliseconds) * 1_000_000)
    }
}

/// Why a WebSocket connection was closed right after its handshake (`tickwire_connections_refused_total{reason}`).
public enum ConnectionRefusal: String, Sendable, CaseIterable {
    /// Past `--max-connections` (close 1013).
    case full
    /// A missing, invalid or expired token, or no `auth` in time (close 4001).
    case token
    /// Past `--max-connections-per-user` (close 1008).
    case userLimit = "user_limit"
}

import Atomics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TickwireProtocol

/// One gateway process: the sessions' shared settings, the fan-out, the price window
/// and the broker, wired together. It is the broker's delegate.
public final class Gateway: BrokerDelegate {
    public let settings: SessionSettings
    public let hub: Hub
    public let gate: PriceGate
    public let broker: any Broker
    public let metrics: GatewayMetrics
    public let maximumConnections: Int
    private let logger: Logger
    private let activeConnections = ManagedAtomic<Int>(0)
    private let brokerReady = ManagedAtomic<Bool>(false)
    private let recentDisconnects = RecentDisconnects(window: 60_000)

    /// `eventLoops` serve clients; `dispatchLoop` runs the price window and the encode-once step
    /// (and should run the broker's connections), so a busy fan-out never delays ingestion.
    public init(
        settings: SessionSettings, eventLoops: [EventLoop], dispatchLoop: EventLoop, broker: any Broker,
        metrics: GatewayMetrics, priceIntervalNanoseconds: UInt64, maximumConnections: Int, logger: Logger
    ) {
        self.settings = settings
        self.metrics = metrics
        let hub = Hub(eventLoops: eventLoops, symbols: settings.symbols, metrics: metrics)
        self.hub = hub
        self.gate = PriceGate(
            eventLoop: dispatchLoop, symbols: settings.symbols, intervalNanoseconds: priceIntervalNanoseconds
        ) { batch in hub.broadcast(batch) }
        self.broker = broker
        self.maximumConnections = maximumConnections
        self.logger = logger
    }

    /// Connects the broker, and fills the snapshot with the prices it already knows.
    public func start(sweepInterval: TimeAmount) async {
        hub.interest.attach(broker)
        await broker.start(delegate: self)
        hub.startSweeping(every: sweepInterval)
        await loadLatestPrices()
    }

    func loadLatestPrices() async {
        do {
            let prices = try await broker.latestPrices()
            hub.seedLatest(prices)
            if !prices.isEmpty { logger.info("loaded latest prices", metadata: ["count": "\(prices.count)"]) }
        } catch {
            logger.warning("could not load latest prices", metadata: ["error": "\(error)"])
        }
    }

    public var isReady: Bool { brokerReady.load(ordering: .relaxed) }

    public var connectionCount: Int { activeConnections.load(ordering: .relaxed) }

    // MARK: Connection accounting

    /// Takes a place for a new connection; false when the gateway is full (close 1013).
    public func reserveConnection() -> Bool {
        let count = activeConnections.wrappingIncrementThenLoad(ordering: .relaxed)
        if count > maximumConnections {
            activeConnections.wrappingDecrement(ordering: .relaxed)
            metrics.connectionRefusedFull()
            return false
        }
        return true
    }

    /// A reserved place whose connection never became a session.
    public func releaseReservation() {
        activeConnections.wrappingDecrement(ordering: .relaxed)
    }

    public func sessionOpened(userID: String) {
        let isReconnect = recentDisconnects.connected(userID: userID, now: .now())
        metrics.connectionOpened(active: connectionCount, isReconnect: isReconnect)
    }

    public func sessionClosed(userID: String?, code: UInt16?) {
        let active = activeConnections.wrappingDecrementThenLoad(ordering: .relaxed)
        if let userID { recentDisconnects.disconnected(userID: userID, now: .now()) }
        metrics.connectionClosed(active: active, code: code)
    }

    // MARK: BrokerDelegate

    /// The loop the window runs on; a broker that delivers there saves a hop per price.
    public var priceLoop: EventLoop { gate.eventLoop }

    public func broker(didReceive prices: [PriceUpdate]) {
        let now = Timestamp.nowMicroseconds()
        for price in prices {
            if let publishedAt = price.publishedAtMicroseconds {
                metrics.brokerLag.recordNanoseconds(max(0, now - publishedAt) * 1000)
            }
        }
        gate.offer(prices)
    }

    public func broker(didReceive notification: NotificationEnvelope, forUser userID: String) {
        metrics.brokerLag.recordNanoseconds(
            max(0, Timestamp.now().millisecondsSinceEpoch - notification.timestamp.millisecondsSinceEpoch) * 1_000_000)
        hub.deliver(notification, toUser: userID)
    }

    public func broker(readinessChanged ready: Bool) {
        let was = brokerReady.exchange(ready, ordering: .relaxed)
        guard was != ready else { return }
        if ready {
            logger.info("broker ready")
            Task { await self.loadLatestPrices() }
        } else {
            logger.warning("broker not ready")
        }
    }
}

/// Users who disconnected lately, to count reconnects. Touched on connect and disconnect only.
final class RecentDisconnects: Sendable {
    private struct State {
        var recent: [String: Int64] = [:]
        var lastPrune: Int64 = 0
    }
    private let state = NIOLockedValueBox(State())
    private let window: Int64

    init(window milliseconds: Int64) {
        self.window = milliseconds
    }

    /// Returns true when the user had disconnected within the window.
    func connected(userID: String, now: Timestamp) -> Bool {
        state.withLockedValue { state in
            guard let at = state.recent.removeValue(forKey: userID) else { return false }
            return now.millisecondsSinceEpoch - at <= window
        }
    }

    func disconnected(userID: String, now: Timestamp) {
        state.withLockedValue { state in
            let now = now.millisecondsSinceEpoch
            state.recent[userID] = now
            // Pruning is O(n): do it at most once per window, so a mass disconnect stays linear.
            if now - state.lastPrune > window {
                state.lastPrune = now
                state.recent = state.recent.filter { $0.value >= now - window }
            }
        }
    }
}

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
    public let maximumConnectionsPerUser: Int
    private let logger: Logger
    private let openSockets = ManagedAtomic<Int>(0)
    private let openWebSockets = ManagedAtomic<Int>(0)
    private let brokerReady = ManagedAtomic<Bool>(false)
    private let users = UserConnections(reconnectWindow: 60_000)

    /// `eventLoops` serve clients; `dispatchLoop` runs the price window and the encode-once step
    /// (and should run the broker's connections), so a busy fan-out never delays ingestion.
    public init(
        settings: SessionSettings, eventLoops: [EventLoop], dispatchLoop: EventLoop, broker: any Broker,
        metrics: GatewayMetrics, priceIntervalNanoseconds: UInt64, maximumConnections: Int,
        maximumConnectionsPerUser: Int = 20, logger: Logger
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
        self.maximumConnectionsPerUser = maximumConnectionsPerUser
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

    /// Open WebSocket connections (`tickwire_connections_active`).
    public var connectionCount: Int { openWebSockets.load(ordering: .relaxed) }

    /// Open sockets of the public listener, HTTP and WebSocket (`tickwire_sockets_open`).
    public var socketCount: Int { openSockets.load(ordering: .relaxed) }

    // MARK: Connection accounting

    /// Sockets let in past `maximumConnections` only to be told the gateway is full (1013);
    /// beyond these, new sockets are closed as soon as they are accepted.
    public static let overCapacityAllowance = 64

    /// Takes a place for a socket just accepted. Every socket counts, HTTP or WebSocket, so
    /// idle or trickling ones fill the gateway too, and it never runs out of file descriptors.
    public func admitSocket() -> SocketAdmission {
        let count = openSockets.wrappingIncrementThenLoad(ordering: .relaxed)
        metrics.socketsOpen(count)
        if count <= maximumConnections { return .admitted }
        if count <= maximumConnections + Self.overCapacityAllowance { return .overCapacity }
        return .refused
    }

    /// Gives back the place of a socket that closed (whatever its admission was).
    public func socketClosed() {
        metrics.socketsOpen(openSockets.wrappingDecrementThenLoad(ordering: .relaxed))
    }

    public func webSocketOpened() {
        metrics.webSocketOpened()
        metrics.activeConnections(openWebSockets.wrappingIncrementThenLoad(ordering: .relaxed))
    }

    public func webSocketClosed() {
        metrics.activeConnections(openWebSockets.wrappingDecrementThenLoad(ordering: .relaxed))
    }

    /// An authenticated connection of `userID` wants to become a session; false past
    /// `maximumConnectionsPerUser` (the caller refuses it). Balance a true with `sessionEnded`.
    public func sessionStarting(userID: String) -> Bool {
        switch users.opened(userID: userID, limit: maximumConnectionsPerUser, now: .now()) {
        case .refused:
            return false
        case .admitted(let isReconnect):
            metrics.sessionStarted(isReconnect: isReconnect)
            return true
        }
    }

    public func sessionEnded(userID: String) {
        users.closed(userID: userID, now: .now())
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

/// What a just-accepted socket may do.
public enum SocketAdmission: Sendable, Equatable {
    case admitted
    /// Past `--max-connections`: a WebSocket upgrade is answered with 1013, HTTP is served.
    case overCapacity
    /// Too far past it: the socket is closed at once.
    case refused
}

/// How many sessions each user has open, and who disconnected lately (to count reconnects).
/// Touched on connect and disconnect only, never per message.
final class UserConnections: Sendable {
    enum Opening: Equatable {
        case admitted(isReconnect: Bool)
        case refused
    }

    private struct State {
        var open: [String: Int] = [:]
        var recentlyClosed: [String: Int64] = [:]
        var lastPrune: Int64 = 0
    }
    private let state = NIOLockedValueBox(State())
    private let reconnectWindow: Int64

    init(reconnectWindow milliseconds: Int64) {
        self.reconnectWindow = milliseconds
    }

    func opened(userID: String, limit: Int, now: Timestamp) -> Opening {
        state.withLockedValue { state in
            let count = state.open[userID, default: 0]
            guard count < limit else { return .refused }
            state.open[userID] = count + 1
            guard let at = state.recentlyClosed.removeValue(forKey: userID) else { return .admitted(isReconnect: false) }
            return .admitted(isReconnect: now.millisecondsSinceEpoch - at <= reconnectWindow)
        }
    }

    func closed(userID: String, now: Timestamp) {
        state.withLockedValue { state in
            let remaining = state.open[userID, default: 1] - 1
            state.open[userID] = remaining > 0 ? remaining : nil
            let now = now.millisecondsSinceEpoch
            state.recentlyClosed[userID] = now
            // Pruning is O(n): do it at most once per window, so a mass disconnect stays linear.
            if now - state.lastPrune > reconnectWindow {
                state.lastPrune = now
                state.recentlyClosed = state.recentlyClosed.filter { $0.value >= now - reconnectWindow }
            }
        }
    }
}

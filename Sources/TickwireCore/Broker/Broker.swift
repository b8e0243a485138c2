import TickwireProtocol

/// The replay of a user's stored notifications after a given id.
public struct NotificationReplay: Sendable, Equatable {
    /// Events after `since`, oldest first.
    public var events: [NotificationEnvelope]
    /// False when `since` is older than what is retained: events may be missing.
    public var recovered: Bool

    public init(events: [NotificationEnvelope], recovered: Bool) {
        self.events = events
        self.recovered = recovered
    }
}

/// A channel a gateway can be interested in.
public enum BrokerChannel: Sendable, Hashable {
    case prices(symbol: String)
    case notifications(userID: String)
}

/// Receives what a broker delivers. Called from any thread; must not block.
public protocol BrokerDelegate: AnyObject, Sendable {
    /// Prices published together arrive together (a feed moving many symbols at once).
    func broker(didReceive prices: [PriceUpdate])
    /// Per user, events arrive in id order.
    func broker(didReceive notification: NotificationEnvelope, forUser userID: String)
    func broker(readinessChanged ready: Bool)
}

/// Moves prices and notifications between publishers and gateways: in one process
/// (`InMemoryBroker`) or across many through Redis Pub/Sub.
public protocol Broker: AnyObject, Sendable {
    /// Starts delivering to `delegate` (held weakly or until `shutdown`).
    func start(delegate: any BrokerDelegate) async
    func shutdown() async

    /// Whether the broker can deliver right now (`/readyz`).
    var isReady: Bool { get }

    /// Publishes prices to every gateway and records each as its symbol's latest.
    func publish(prices: [PriceUpdate]) async throws
    /// The latest price of every symbol that has one.
    func latestPrices() async throws -> [PriceUpdate]

    /// Stores a notification, then publishes it, in one atomic step with one id for both.
    func publish(notification kind: NotificationKind, data: JSONObject, userID: String) async throws
        -> NotificationEnvelope
    /// The stored events of `userID` after `since`.
    func replay(userID: String, after since: StreamID) async throws -> NotificationReplay

    /// The gateway's clients need (or no longer need) this channel. Called on the first
    /// local interest and after the last one; never twice in a row with the same value.
    func setInterest(_ channel: BrokerChannel, active: Bool)
}

extension Broker {
    public func publish(price: PriceUpdate) async throws {
        try await publish(prices: [price])
    }
}

import NIOConcurrencyHelpers
import TickwireProtocol

/// The broker of a single gateway process: no network, nothing to configure.
/// Delivery happens on the publisher's thread, in publish order (the lock is held
/// while delivering so that concurrent publishes to one user arrive in id order).
public final class InMemoryBroker: Broker {
    struct State {
        var delegate: (any BrokerDelegate)?
        var latest: [String: PriceUpdate] = [:]
        var log: NotificationLog
    }

    private let state: NIOLockedValueBox<State>

    public init(notificationCapacity: Int = 1000, retentionMilliseconds: Int64 = 7 * 86_400_000) {
        self.state = NIOLockedValueBox(State(
            log: NotificationLog(capacity: notificationCapacity, retentionMilliseconds: retentionMilliseconds)))
    }

    public func start(delegate: any BrokerDelegate) async {
        state.withLockedValue { $0.delegate = delegate }
        delegate.broker(readinessChanged: true)
    }

    public func shutdown() async {
        state.withLockedValue { $0.delegate = nil }
    }

    public var isReady: Bool { true }

    public func publish(prices: [PriceUpdate]) async throws {
        let now = Timestamp.nowMicroseconds()
        let stamped = prices.map { price in
            var price = price
            price.publishedAtMicroseconds = now
            return price
        }
        state.withLockedValue { state in
            for price in stamped { state.latest[price.symbol] = price }
            state.delegate?.broker(didReceive: stamped)
        }
    }

    public func latestPrices() async throws -> [PriceUpdate] {
        state.withLockedValue { Array($0.latest.values) }
    }

    public func publish(notification kind: NotificationKind, data: JSONObject, userID: String) async throws
        -> NotificationEnvelope
    {
        state.withLockedValue { state in
            let envelope = state.log.append(kind: kind, data: data, userID: userID, now: .now())
            state.delegate?.broker(didReceive: envelope, forUser: userID)
            return envelope
        }
    }

    public func replay(userID: String, after since: StreamID) async throws -> NotificationReplay {
        state.withLockedValue { $0.log.replay(userID: userID, after: since, now: .now()) }
    }

    public func setInterest(_ channel: BrokerChannel, active: Bool) {
        // Everything published here is delivered to the one local gateway anyway.
    }
}

import NIOConcurrencyHelpers

/// Adds up the interest of every event loop in each broker channel and tells the
/// broker on the first and after the last, so a gateway subscribes only to what
/// its own clients need. Touched on subscribe and unsubscribe, never per message.
public final class InterestTracker: Sendable {
    private struct State {
        var counts: [BrokerChannel: Int] = [:]
        var broker: (any Broker)?
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Connects the tracker to a broker and replays the interest gathered so far.
    public func attach(_ broker: any Broker) {
        let channels = state.withLockedValue { state in
            state.broker = broker
            return Array(state.counts.keys)
        }
        for channel in channels { broker.setInterest(channel, active: true) }
    }

    func change(_ channel: BrokerChannel, by delta: Int) {
        // The broker is told while the lock is held, so that interest changes reach it in order.
        state.withLockedValue { state in
            let old = state.counts[channel] ?? 0
            let new = old + delta
            state.counts[channel] = new > 0 ? new : nil
            if old == 0 && new > 0 { state.broker?.setInterest(channel, active: true) }
            if old > 0 && new == 0 { state.broker?.setInterest(channel, active: false) }
        }
    }
}

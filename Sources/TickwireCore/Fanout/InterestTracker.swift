import NIOConcurrencyHelpers

/// Which event loops have local subscribers of each broker channel. It tells the broker
/// on the first loop and after the last, so a gateway subscribes only to what its own
/// clients need, and it tells the hub which loops a user's notification must go to.
/// Changed on subscribe and unsubscribe (once per loop, not per connection); read once per
/// notification.
public final class InterestTracker: Sendable {
    private struct State {
        /// The indices of the loops interested in each channel; absent when none is.
        var loops: [BrokerChannel: [Int]] = [:]
        var broker: (any Broker)?
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Connects the tracker to a broker and replays the interest gathered so far.
    public func attach(_ broker: any Broker) {
        let channels = state.withLockedValue { state in
            state.broker = broker
            return Array(state.loops.keys)
        }
        for channel in channels { broker.setInterest(channel, active: true) }
    }

    /// The loops with a subscriber of `channel`.
    func loops(interestedIn channel: BrokerChannel) -> [Int] {
        state.withLockedValue { $0.loops[channel] ?? [] }
    }

    /// Loop `loop` gained its first subscriber of `channel` (`active`), or lost its last one.
    func change(_ channel: BrokerChannel, loop: Int, active: Bool) {
        // The broker is told while the lock is held, so that interest changes reach it in order.
        state.withLockedValue { state in
            var loops = state.loops[channel] ?? []
            let wasEmpty = loops.isEmpty
            if active {
                if !loops.contains(loop) { loops.append(loop) }
            } else {
                loops.removeAll { $0 == loop }
            }
            state.loops[channel] = loops.isEmpty ? nil : loops
            if wasEmpty && !loops.isEmpty { state.broker?.setInterest(channel, active: true) }
            if !wasEmpty && loops.isEmpty { state.broker?.setInterest(channel, active: false) }
        }
    }
}

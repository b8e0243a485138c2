import NIOConcurrencyHelpers

/// Which event loops have local subscribers of each broker channel. It tells the broker
/// on the first loop and after the last, so a gateway subscribes only to what its own
/// clients need, and it tells the hub which loops a user's notification must go to.
/// Changed on subscribe and unsubscribe (once per loop, not per connection); read once per
/// notification.
///
/// Its lock is a leaf: nothing is called while it is held. The broker delivers a user's events
/// with its own lock held (to keep their order) and reaches `loops(interestedIn:)` from there;
/// telling the broker of a change with this lock held took the two locks in the other order, and
/// deadlocked a gateway under load (the soak test found it).
public final class InterestTracker: Sendable {
    private struct State {
        /// The indices of the loops interested in each channel; absent when none is.
        var loops: [BrokerChannel: [Int]] = [:]
        var broker: (any Broker)?
        /// Changes the broker has not been told yet, oldest first.
        var untold: [(channel: BrokerChannel, active: Bool)] = []
        /// One caller at a time tells the broker, so changes reach it in the order they were made.
        var telling = false

        /// Whether the caller is to tell the broker: there is something to tell and no one else is.
        mutating func claimTelling() -> Bool {
            guard !untold.isEmpty, !telling else { return false }
            telling = true
            return true
        }
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Connects the tracker to a broker and replays the interest gathered so far.
    public func attach(_ broker: any Broker) {
        let tells = state.withLockedValue { state in
            state.broker = broker
            state.untold = state.loops.keys.map { ($0, true) }
            return state.claimTelling()
        }
        if tells { tellBroker() }
    }

    /// The loops with a subscriber of `channel`.
    func loops(interestedIn channel: BrokerChannel) -> [Int] {
        state.withLockedValue { $0.loops[channel] ?? [] }
    }

    /// Loop `loop` gained its first subscriber of `channel` (`active`), or lost its last one.
    func change(_ channel: BrokerChannel, loop: Int, active: Bool) {
        let tells = state.withLockedValue { state in
            var loops = state.loops[channel] ?? []
            let wasEmpty = loops.isEmpty
            if active {
                if !loops.contains(loop) { loops.append(loop) }
            } else {
                loops.removeAll { $0 == loop }
            }
            state.loops[channel] = loops.isEmpty ? nil : loops
            if state.broker != nil, wasEmpty != loops.isEmpty { state.untold.append((channel, !loops.isEmpty)) }
            return state.claimTelling()
        }
        if tells { tellBroker() }
    }

    /// Tells the broker every untold change, outside the lock, until none is left.
    private func tellBroker() {
        while true {
            let (broker, changes) = state.withLockedValue { state in
                defer { state.untold = [] }
                if state.untold.isEmpty { state.telling = false }
                return (state.broker, state.untold)
            }
            guard let broker, !changes.isEmpty else { return }
            for change in changes { broker.setInterest(change.channel, active: change.active) }
        }
    }
}

/// Which replica publishes, as a value: ticks and lock results in, actions out.
///
/// A follower tries to take the lock on every tick. A leader renews it; when the
/// renewal says the lock is gone, or when renewals have failed for longer than the
/// lock lives (another replica may have taken it meanwhile), it stops publishing.
public struct LeaderElection: Sendable {
    public enum Role: Sendable, Equatable {
        case follower
        case leader(lastRenewal: ContinuousClock.Instant)
    }

    public enum Action: Sendable, Equatable {
        case tryToAcquire
        case renew
        case startPublishing
        case stopPublishing
        case none
    }

    public let ttl: Duration
    public private(set) var role = Role.follower

    public init(ttl: Duration) {
        self.ttl = ttl
    }

    public var isLeader: Bool {
        if case .leader = role { return true }
        return false
    }

    /// Every `ttl / 3`.
    public func tick() -> Action {
        isLeader ? .renew : .tryToAcquire
    }

    public mutating func acquireFinished(_ result: Result<Bool, Error>, now: ContinuousClock.Instant) -> Action {
        guard !isLeader, case .success(true) = result else { return .none }
        role = .leader(lastRenewal: now)
        return .startPublishing
    }

    public mutating func renewFinished(_ result: Result<Bool, Error>, now: ContinuousClock.Instant) -> Action {
        guard case .leader(let lastRenewal) = role else { return .none }
        switch result {
        case .success(true):
            role = .leader(lastRenewal: now)
            return .none
        case .success(false):
            role = .follower
            return .stopPublishing
        case .failure:
            // Redis unreachable: keep publishing while the lock would still be ours.
            guard now - lastRenewal >= ttl else { return .none }
            role = .follower
            return .stopPublishing
        }
    }

    /// Shutting down: a leader gives the lock back so a standby takes over at once.
    public mutating func resign() -> Bool {
        defer { role = .follower }
        return isLeader
    }
}

import NIOCore

/// When to fetch a JWKS document next, as a value: fetch results and unknown `kid`s in, the
/// next fetch out. The identity provider's `Cache-Control: max-age` sets the interval, bounded
/// to [`minimumInterval`, `maximumInterval`]; a failed fetch is retried sooner (1 s doubling,
/// never later than the interval) while the last good set stays in force; a `kid` nobody
/// knows (a rotation) fetches at once, but no more often than `minimumInterval`.
public struct JWKSRefreshSchedule: Sendable {
    public var minimumInterval: TimeAmount
    public var maximumInterval: TimeAmount
    /// The interval when the response says nothing.
    public var defaultInterval: TimeAmount
    private var lastAttempt: NIODeadline?
    private var failuresInARow = 0
    private var interval: TimeAmount

    public init(
        minimumInterval: TimeAmount = .seconds(60), maximumInterval: TimeAmount = .hours(24),
        defaultInterval: TimeAmount = .hours(1)
    ) {
        self.minimumInterval = minimumInterval
        self.maximumInterval = maximumInterval
        self.defaultInterval = defaultInterval
        self.interval = defaultInterval
    }

    /// A fetch starts now.
    public mutating func attempting(at now: NIODeadline) {
        lastAttempt = now
    }

    /// A fetch succeeded: the next one is `max-age` from now, within the bounds.
    public mutating func fetched(maxAge: TimeAmount?, at now: NIODeadline) -> NIODeadline {
        failuresInARow = 0
        interval = min(maximumInterval, max(minimumInterval, maxAge ?? defaultInterval))
        return now + interval
    }

    /// A fetch failed: try again after 1, 2, 4 ... seconds, never later than the usual interval.
    public mutating func failed(at now: NIODeadline) -> NIODeadline {
        failuresInARow += 1
        let backoff = TimeAmount.seconds(1 << min(failuresInARow - 1, 16))
        return now + min(backoff, interval)
    }

    /// A token named a `kid` no key has: whether to fetch now.
    public func shouldFetchForUnknownKeyID(at now: NIODeadline) -> Bool {
        guard let lastAttempt else { return true }
        return now - lastAttempt >= minimumInterval
    }
}

import NIOCore

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    var timeAmount: TimeAmount { .nanoseconds(nanoseconds) }

    /// Whole milliseconds, as Redis takes them (PX, WAIT).
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}

/// Exponential backoff with full jitter: each delay is uniform in [0, min(cap, base * 2^attempt)].
public struct Backoff: Sendable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration = .milliseconds(100), cap: Duration = .seconds(5)) {
        self.base = base
        self.cap = cap
    }

    public func delay(attempt: Int) -> Duration {
        let ceiling = min(cap.nanoseconds, base.nanoseconds << min(attempt, 30))
        return .nanoseconds(Int64.random(in: 0...max(1, ceiling)))
    }
}

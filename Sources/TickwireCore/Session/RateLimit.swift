import DequeModule

/// "At most `limit` events in any sliding `window`", counted exactly: the times of
/// the events inside the window are kept, so a well-behaved client (a ping every
/// 30 s) holds two entries, and only a busy one holds more.
public struct SlidingWindowLimit: Sendable {
    public let limit: Int
    public let windowNanoseconds: UInt64
    private var times: Deque<UInt64> = []

    public init(limit: Int, windowNanoseconds: UInt64) {
        self.limit = limit
        self.windowNanoseconds = windowNanoseconds
    }

    /// Records an event at `now` if it fits; returns false (and records nothing) if it would exceed the limit.
    public mutating func record(now: UInt64) -> Bool {
        while let oldest = times.first, oldest + windowNanoseconds <= now { times.removeFirst() }
        guard times.count < limit else { return false }
        times.append(now)
        return true
    }

    /// Events currently inside the window (for tests and metrics).
    public func count(now: UInt64) -> Int {
        times.reduce(0) { $1 + windowNanoseconds > now ? $0 + 1 : $0 }
    }

    public mutating func reset() {
        times = []
    }
}

/// One kind of rate-limited action: a sliding window, and the suspension that starts
/// when the window overflows (PROTOCOL.md section 7).
public struct SuspendingLimit: Sendable {
    public enum Decision: Equatable, Sendable {
        case allowed
        /// Refused; the suspension ends in this many milliseconds.
        case refused(retryAfterMilliseconds: Int)
    }

    var window: SlidingWindowLimit
    let suspensionNanoseconds: UInt64
    private(set) var suspendedUntil: UInt64?

    public init(limit: Int, windowNanoseconds: UInt64, suspensionNanoseconds: UInt64) {
        self.window = SlidingWindowLimit(limit: limit, windowNanoseconds: windowNanoseconds)
        self.suspensionNanoseconds = suspensionNanoseconds
    }

    public mutating func check(now: UInt64) -> Decision {
        if let until = suspendedUntil {
            if now < until { return .refused(retryAfterMilliseconds: Self.milliseconds(until - now)) }
            suspendedUntil = nil
            window.reset()
        }
        if window.record(now: now) { return .allowed }
        suspendedUntil = now + suspensionNanoseconds
        return .refused(retryAfterMilliseconds: Self.milliseconds(suspensionNanoseconds))
    }

    static func milliseconds(_ nanoseconds: UInt64) -> Int {
        Int((nanoseconds + 999_999) / 1_000_000)
    }
}

/// Full-jitter exponential backoff (docs/CLIENTS.md, "Backoff"): the step starts at 1 s, doubles
/// after each failed attempt and stops growing at 30 s; each delay is uniform in `[0, step)`.
public struct Backoff: Sendable, Equatable {
    public var initial: Duration = .seconds(1)
    public var maximum: Duration = .seconds(30)
    /// How long a connection must stay `connected` for the next drop to start over at `initial`.
    public var resetAfter: Duration = .seconds(10)
    /// Failed attempts since the last reset.
    public private(set) var failures = 0

    public init() {}

    /// The current step: `initial * 2^failures`, at most `maximum`.
    public var step: Duration {
        var step = initial
        for _ in 0..<failures where step < maximum { step *= 2 }
        return min(step, maximum)
    }

    /// The delay before the next attempt, for a random draw in `[0, 1)`, and counts the failure.
    public mutating func nextDelay(random: Double) -> Duration {
        let delay = step * min(max(random, 0), 0.999_999_999)
        failures += 1
        return delay
    }

    public mutating func reset() {
        failures = 0
    }
}

import NIOConcurrencyHelpers

/// The client's time: the heartbeat, the backoff and the token refresh all run on it. Tests pass a
/// `ManualClock` so that 45 s of silence or a 60 s wait take no time at all.
public protocol TickwireClock: Sendable {
    /// Time since an arbitrary origin; only differences matter.
    var now: Duration { get }
    /// Returns once `now` reaches `deadline` (at once if it has); throws when the task is cancelled.
    func sleep(until deadline: Duration) async throws
}

/// Real time, monotonic (`ContinuousClock`).
public struct SystemClock: TickwireClock {
    private let origin = ContinuousClock.now

    public init() {}

    public var now: Duration { ContinuousClock.now - origin }

    public func sleep(until deadline: Duration) async throws {
        try await ContinuousClock().sleep(until: origin + deadline, tolerance: .milliseconds(10))
    }
}

/// Time that moves only when `advance(by:)` says so. Sleepers whose deadline has passed wake, in
/// deadline order.
public final class ManualClock: TickwireClock {
    private struct Sleeper {
        var deadline: Duration
        var continuation: CheckedContinuation<Void, Error>
    }

    private struct State {
        var now: Duration = .zero
        var sleepers: [Int: Sleeper] = [:]
        var nextID = 0
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public var now: Duration { state.withLockedValue { $0.now } }

    /// How many sleeps are waiting: a test can wait for the client to arm its timers.
    public var pendingSleeps: Int { state.withLockedValue { $0.sleepers.count } }

    /// The earliest deadline anyone waits for.
    public var nextDeadline: Duration? { state.withLockedValue { $0.sleepers.values.map(\.deadline).min() } }

    public func advance(by duration: Duration) {
        let woken = state.withLockedValue { state -> [Sleeper] in
            state.now += duration
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.sorted { $0.deadline < $1.deadline }
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    public func sleep(until deadline: Duration) async throws {
        let id = state.withLockedValue { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                let resumeNow = state.withLockedValue { state -> Bool in
                    if deadline <= state.now || Task.isCancelled { return true }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLockedValue { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }
}

import NIOConcurrencyHelpers

/// A value many streams watch: each new stream starts with the current value (when there is one)
/// and receives every later one. Registration happens under the lock, so no change between
/// creating a stream and registering it is lost.
final class Broadcast<Element: Sendable>: Sendable {
    private struct State {
        var current: Element?
        var continuations: [Int: AsyncStream<Element>.Continuation] = [:]
        var nextID = 0
        var finished = false
    }

    private let state: NIOLockedValueBox<State>
    private let replaysCurrent: Bool

    init(initial: Element?, replaysCurrent: Bool) {
        state = NIOLockedValueBox(State(current: initial))
        self.replaysCurrent = replaysCurrent
    }

    var current: Element? { state.withLockedValue { $0.current } }

    func stream() -> AsyncStream<Element> {
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: .unbounded)
        let registered = state.withLockedValue { state -> Bool in
            guard !state.finished else {
                if replaysCurrent, let current = state.current { continuation.yield(current) }
                return false
            }
            state.nextID += 1
            let id = state.nextID
            state.continuations[id] = continuation
            if replaysCurrent, let current = state.current { continuation.yield(current) }
            continuation.onTermination = { [weak self] _ in
                self?.state.withLockedValue { _ = $0.continuations.removeValue(forKey: id) }
            }
            return true
        }
        if !registered { continuation.finish() }
        return stream
    }

    func send(_ element: Element) {
        state.withLockedValue { state in
            state.current = element
            for continuation in state.continuations.values { continuation.yield(element) }
        }
    }

    func finish() {
        let continuations = state.withLockedValue { state in
            state.finished = true
            defer { state.continuations = [:] }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}

/// What the engine reports to the app, outside the engine's actor so that reading the current state
/// and starting a stream need no `await`.
struct ClientObservers: Sendable {
    let states = Broadcast<ConnectionState>(initial: .connecting, replaysCurrent: true)
    let errors = Broadcast<TickwireError>(initial: nil, replaysCurrent: false)
    let gaps = Broadcast<NotificationGap>(initial: nil, replaysCurrent: false)

    func finish() {
        states.finish()
        errors.finish()
        gaps.finish()
    }
}

import Logging
import NIOCore

/// Keeps a `JWTKeyStore` filled from a JWKS URL (`--jwks-url`), following a
/// `JWKSRefreshSchedule`. Confined to one event loop; `fetch` does the network part.
/// Verification never waits for it: until a set arrives, or while a rotated `kid` is
/// fetched, tokens are refused with `INVALID_TOKEN`.
public final class JWKSRefresher: Sendable {
    /// A fetched document: its keys, and how long the response says it stays fresh.
    public struct Fetched: Sendable {
        public var keys: JWTKeySet
        public var maxAge: TimeAmount?

        public init(keys: JWTKeySet, maxAge: TimeAmount?) {
            self.keys = keys
            self.maxAge = maxAge
        }
    }

    private struct State {
        var schedule: JWKSRefreshSchedule
        var next: Scheduled<Void>?
        var inFlight = false
        var stopped = false
    }

    private let store: JWTKeyStore
    private let fetch: @Sendable () async throws -> Fetched
    private let eventLoop: EventLoop
    private let logger: Logger
    private let state: NIOLoopBoundBox<State>

    public init(
        store: JWTKeyStore, schedule: JWKSRefreshSchedule, eventLoop: EventLoop, logger: Logger,
        fetch: @escaping @Sendable () async throws -> Fetched
    ) {
        self.store = store
        self.fetch = fetch
        self.eventLoop = eventLoop
        self.logger = logger
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(schedule: schedule), eventLoop: eventLoop)
    }

    /// Fetches at once, then on schedule; refetches early for a `kid` nobody knows.
    public func start() {
        store.onUnknownKeyID { [weak self] _ in self?.unknownKeyIDSeen() }
        eventLoop.execute { self.fetchNow() }
    }

    public func stop() {
        eventLoop.execute {
            self.state.value.stopped = true
            self.state.value.next?.cancel()
        }
    }

    private func unknownKeyIDSeen() {
        eventLoop.execute {
            guard self.state.value.schedule.shouldFetchForUnknownKeyID(at: .now()) else { return }
            self.fetchNow()
        }
    }

    private func fetchNow() {
        guard !state.value.stopped, !state.value.inFlight else { return }
        state.value.inFlight = true
        state.value.next?.cancel()
        state.value.schedule.attempting(at: .now())
        let fetch = self.fetch
        Task {
            let result = await Result { try await fetch() }
            self.eventLoop.execute { self.finished(result) }
        }
    }

    private func finished(_ result: Result<Fetched, any Error>) {
        state.value.inFlight = false
        guard !state.value.stopped else { return }
        let next: NIODeadline
        switch result {
        case .success(let fetched):
            store.replace(with: fetched.keys)
            next = state.value.schedule.fetched(maxAge: fetched.maxAge, at: .now())
            logger.info("JWKS fetched", metadata: ["keys": "\(fetched.keys.entries.count)"])
        case .failure(let error):
            next = state.value.schedule.failed(at: .now())
            logger.warning(
                "JWKS fetch failed; the keys fetched before stay in force",
                metadata: ["error": "\(error)", "retry_in_ms": "\((next - .now()).nanoseconds / 1_000_000)"])
        }
        state.value.next = eventLoop.scheduleTask(deadline: next) { self.fetchNow() }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

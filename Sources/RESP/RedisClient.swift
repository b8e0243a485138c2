import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A command client that keeps one pipelined connection and re-establishes it when
/// needed. While Redis is unreachable, commands fail fast (`RedisError.unavailable`)
/// until the backoff allows the next attempt, instead of piling up.
///
/// Connections go through an endpoint: behind Sentinel the client drops its connection when
/// the master moves, and a `READONLY` reply (it reached a replica) sends it to look the master
/// up again and retry the command once there; the replica did not run it.
public final class RedisClient: Sendable {
    public let endpoint: any RedisEndpoint
    public var configuration: RedisConfiguration { endpoint.configuration }
    private let ownsEndpoint: Bool
    private let eventLoop: EventLoop
    private let name: String
    private let logger: Logger
    private let backoff: Backoff

    private enum State {
        case idle(failures: Int, retryAt: NIODeadline?)
        case connecting(EventLoopFuture<RedisConnection>)
        case connected(RedisConnection)
        case shutDown
    }
    private let state = NIOLockedValueBox(State.idle(failures: 0, retryAt: nil))

    /// A client with an endpoint of its own (shut down with it).
    public convenience init(
        configuration: RedisConfiguration, eventLoop: EventLoop, name: String, logger: Logger,
        backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
    ) {
        self.init(
            endpoint: configuration.endpoint(eventLoop: eventLoop, logger: logger), ownsEndpoint: true,
            eventLoop: eventLoop, name: name, logger: logger, backoff: backoff)
    }

    /// A client of a shared endpoint, which its owner shuts down.
    public convenience init(
        endpoint: any RedisEndpoint, eventLoop: EventLoop, name: String, logger: Logger,
        backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
    ) {
        self.init(endpoint: endpoint, ownsEndpoint: false, eventLoop: eventLoop, name: name, logger: logger, backoff: backoff)
    }

    private init(
        endpoint: any RedisEndpoint, ownsEndpoint: Bool, eventLoop: EventLoop, name: String, logger: Logger,
        backoff: Backoff
    ) {
        self.endpoint = endpoint
        self.ownsEndpoint = ownsEndpoint
        self.eventLoop = eventLoop
        self.name = name
        self.logger = logger
        self.backoff = backoff
        endpoint.onMasterMoved { [weak self] in self?.dropConnection() }
    }

    /// Closes the current connection (the master moved, or it turned out to be a replica): the
    /// next command connects again, at once.
    public func dropConnection() {
        let connection: RedisConnection? = state.withLockedValue { state in
            switch state {
            case .connected(let connection):
                state = .idle(failures: 0, retryAt: nil)
                return connection
            case .idle:
                // Backing off from a master that died: the new one is worth trying now.
                state = .idle(failures: 0, retryAt: nil)
                return nil
            case .connecting, .shutDown:
                return nil
            }
        }
        if let connection { connection.channel.close(promise: nil) }
    }

    /// The current connection, connecting when there is none.
    public func connection() async throws -> RedisConnection {
        enum Next {
            case use(RedisConnection)
            case wait(EventLoopFuture<RedisConnection>)
            case fail(Error)
            case start(EventLoopPromise<RedisConnection>, failures: Int)
        }
        let next: Next = state.withLockedValue { state in
            switch state {
            case .connected(let connection) where connection.isActive:
                return .use(connection)
            case .connecting(let future):
                return .wait(future)
            case .shutDown:
                return .fail(RedisError.unavailable("client shut down"))
            case .idle(let failures, let retryAt?) where retryAt > .now():
                return .fail(RedisError.unavailable("reconnecting to \(configuration.redacted) (\(failures) failed attempts)"))
            case .idle(let failures, _):
                let promise = eventLoop.makePromise(of: RedisConnection.self)
                state = .connecting(promise.futureResult)
                return .start(promise, failures: failures)
            case .connected:
                let promise = eventLoop.makePromise(of: RedisConnection.self)
                state = .connecting(promise.futureResult)
                return .start(promise, failures: 0)
            }
        }
        switch next {
        case .use(let connection): return connection
        case .wait(let future): return try await future.get()
        case .fail(let error): throw error
        case .start(let promise, let failures):
            do {
                let connection = try await endpoint.connect(on: eventLoop, name: name)
                let keep = state.withLockedValue { state -> Bool in
                    if case .shutDown = state { return false }
                    state = .connected(connection)
                    return true
                }
                guard keep else {
                    await connection.close()
                    throw RedisError.unavailable("client shut down")
                }
                if failures > 0 { logger.info("reconnected to Redis", metadata: ["redis": "\(configuration.redacted)"]) }
                promise.succeed(connection)
                return connection
            } catch {
                let delay = backoff.delay(attempt: failures)
                state.withLockedValue { state in
                    if case .shutDown = state { return }
                    state = .idle(failures: failures + 1, retryAt: .now() + delay.timeAmount)
                }
                if failures == 0 {
                    logger.warning("cannot reach Redis", metadata: ["redis": "\(configuration.redacted)", "error": "\(error)"])
                }
                let failure = RedisError.unavailable("\(error)")
                promise.fail(failure)
                throw failure
            }
        }
    }

    public var isConnected: Bool {
        state.withLockedValue { if case .connected(let connection) = $0 { connection.isActive } else { false } }
    }

    /// Sends a command; error replies throw `RedisError.server`.
    @discardableResult
    public func send(_ command: RESPCommand, timeout: Duration? = nil) async throws -> RESPValue {
        do {
            return try await connection().send(command, timeout: timeout)
        } catch RedisError.server(let message) where Self.isReadOnly(message) {
            reachedReplica(message)
            return try await connection().send(command, timeout: timeout)
        }
    }

    static func isReadOnly(_ message: String) -> Bool { message.hasPrefix("READONLY") }

    /// A write reached a replica: the master moved. Look it up again and reconnect.
    private func reachedReplica(_ message: String) {
        logger.warning("Redis answered as a replica: looking the master up again", metadata: [
            "redis": "\(configuration.redacted)", "error": "\(message)",
        ])
        endpoint.invalidate()
        dropConnection()
    }

    public func send(_ name: String, _ arguments: String...) async throws -> RESPValue {
        try await send(RESPCommand(name, arguments))
    }

    /// Runs a script: EVALSHA, and EVAL when the server does not have it cached. With
    /// `replicas` > 0 it then sends `WAIT replicas timeout` on the same connection and throws
    /// `RedisError.notReplicated` when fewer replicas confirmed the write in time (the master
    /// still has it).
    public func evaluate(
        _ script: RedisScript, keys: [String], arguments: [String], replicas: Int, replicaTimeout: Duration
    ) async throws -> RESPValue {
        do {
            return try await evaluateOnce(script, keys: keys, arguments: arguments, replicas: replicas, replicaTimeout: replicaTimeout)
        } catch RedisError.server(let message) where Self.isReadOnly(message) {
            reachedReplica(message)
            return try await evaluateOnce(script, keys: keys, arguments: arguments, replicas: replicas, replicaTimeout: replicaTimeout)
        }
    }

    private func evaluateOnce(
        _ script: RedisScript, keys: [String], arguments: [String], replicas: Int, replicaTimeout: Duration
    ) async throws -> RESPValue {
        try await connection().evaluate(
            script, keys: keys, arguments: arguments, replicas: replicas, replicaTimeout: replicaTimeout)
    }

    public func shutdown() async {
        let connection: RedisConnection? = state.withLockedValue { state in
            defer { state = .shutDown }
            if case .connected(let connection) = state { return connection }
            return nil
        }
        await connection?.close()
        if ownsEndpoint { await endpoint.shutdown() }
    }
}

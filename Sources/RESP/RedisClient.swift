import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A command client that keeps one pipelined connection and re-establishes it when
/// needed. While Redis is unreachable, commands fail fast (`RedisError.unavailable`)
/// until the backoff allows the next attempt, instead of piling up.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
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

    public init(
        configuration: RedisConfiguration, eventLoop: EventLoop, name: String, logger: Logger,
        backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.name = name
        self.logger = logger
        self.backoff = backoff
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
                let connection = try await RedisConnection.connect(configuration, eventLoop: eventLoop, name: name)
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
        try await connection().send(command, timeout: timeout)
    }

    public func send(_ name: String, _ arguments: String...) async throws -> RESPValue {
        try await send(RESPCommand(name, arguments))
    }

    /// Runs a script: EVALSHA, and EVAL when the server does not have it cached.
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RESPValue {
        let connection = try await connection()
        let tail = [String(keys.count)] + keys + arguments
        let reply = try await connection.sendRaw(RESPCommand("EVALSHA", [script.sha1] + tail))
        if case .error(let message) = reply {
            guard message.hasPrefix("NOSCRIPT") else { throw RedisError.server(message) }
            return try await connection.send(RESPCommand("EVAL", [script.source] + tail))
        }
        return reply
    }

    public func shutdown() async {
        let connection: RedisConnection? = state.withLockedValue { state in
            defer { state = .shutDown }
            if case .connected(let connection) = state { return connection }
            return nil
        }
        await connection?.close()
    }
}

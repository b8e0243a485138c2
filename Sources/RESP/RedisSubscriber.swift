import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A dedicated pub/sub connection that outlives network and server failures.
///
/// Channels are reference-counted: the first `subscribe` of a channel sends
/// SUBSCRIBE, the last `unsubscribe` sends UNSUBSCRIBE, and changes made in the
/// same event-loop turn go out as one command each. When the connection drops it
/// reconnects with jittered exponential backoff and subscribes to the whole set
/// again. While connected it sends PING every `pingInterval`; no answer within
/// `pingTimeout` (a server stopped with SIGSTOP, a half-dead link) closes the
/// connection and starts a reconnect.
public final class RedisSubscriber: Sendable {
    public struct Events: Sendable {
        public var message: @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void
        /// Connected and the whole channel set (`channels`) sent for subscription; `reconnected`
        /// after a drop.
        public var connected: @Sendable (_ reconnected: Bool, _ channels: Set<String>) -> Void
        /// The connection dropped: nothing published on `channels` arrives until `connected`.
        public var disconnected: @Sendable (_ channels: Set<String>) -> Void
        /// Sharded: the server dropped these channels (their slot moved to another shard, or it
        /// never served it: `MOVED`). They stay wanted; the owner decides where they go now.
        public var lost: @Sendable (_ channels: [String]) -> Void

        public init(
            message: @escaping @Sendable (String, ByteBuffer) -> Void,
            connected: @escaping @Sendable (Bool, Set<String>) -> Void = { _, _ in },
            disconnected: @escaping @Sendable (Set<String>) -> Void = { _ in },
            lost: @escaping @Sendable ([String]) -> Void = { _ in }
        ) {
            self.message = message
            self.connected = connected
            self.disconnected = disconnected
            self.lost = lost
        }
    }

    public let endpoint: any RedisEndpoint
    public var configuration: RedisConfiguration { endpoint.configuration }
    private let ownsEndpoint: Bool
    private let eventLoop: EventLoop
    private let logger: Logger
    private let events: Events
    private let pingInterval: Duration
    private let pingTimeout: Duration
    private let backoff: Backoff
    /// Sharded Pub/Sub (Redis Cluster): SSUBSCRIBE, one command per slot.
    public let sharded: Bool

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Void, Error>
    }

    private struct State {
        var counts: [String: Int] = [:]
        var connection: RedisConnection?
        var confirmed: Set<String> = []
        var toSubscribe: Set<String> = []
        var toUnsubscribe: Set<String> = []
        var flushScheduled = false
        var waiters: [String: [Waiter]] = [:]
        var nextWaiterID = 0
        var isShutDown = false
        var reconnects = 0
        /// Set when the master moved: a backoff in progress ends early.
        var retryNow = false
    }
    private let state = NIOLockedValueBox(State())

    /// A subscriber with an endpoint of its own (shut down with it).
    public convenience init(
        configuration: RedisConfiguration, eventLoop: EventLoop, logger: Logger, events: Events,
        pingInterval: Duration = .seconds(1), pingTimeout: Duration = .seconds(2),
        backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(5))
    ) {
        self.init(
            endpoint: configuration.endpoint(eventLoop: eventLoop, logger: logger), ownsEndpoint: true, eventLoop: eventLoop,
            logger: logger, events: events, pingInterval: pingInterval, pingTimeout: pingTimeout, backoff: backoff)
    }

    /// A subscriber of a shared endpoint, which its owner shuts down. When the endpoint's
    /// master moves, the subscriber reconnects to the new one and subscribes again.
    public convenience init(
        endpoint: any RedisEndpoint, eventLoop: EventLoop, logger: Logger, events: Events,
        pingInterval: Duration = .seconds(1), pingTimeout: Duration = .seconds(2),
        backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(5)), sharded: Bool = false
    ) {
        self.init(
            endpoint: endpoint, ownsEndpoint: false, eventLoop: eventLoop, logger: logger, events: events,
            pingInterval: pingInterval, pingTimeout: pingTimeout, backoff: backoff, sharded: sharded)
    }

    private init(
        endpoint: any RedisEndpoint, ownsEndpoint: Bool, eventLoop: EventLoop, logger: Logger, events: Events,
        pingInterval: Duration, pingTimeout: Duration, backoff: Backoff, sharded: Bool = false
    ) {
        self.sharded = sharded
        self.endpoint = endpoint
        self.ownsEndpoint = ownsEndpoint
        self.eventLoop = eventLoop
        self.logger = logger
        self.events = events
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.backoff = backoff
        endpoint.onMasterMoved { [weak self] in self?.masterMoved() }
    }

    // MARK: Channels

    public func subscribe(_ channel: String) {
        let schedule = state.withLockedValue { state -> Bool in
            state.counts[channel, default: 0] += 1
            guard state.counts[channel] == 1 else { return false }
            if state.toUnsubscribe.remove(channel) == nil { state.toSubscribe.insert(channel) }
            return scheduleFlush(&state)
        }
        if schedule { eventLoop.execute { self.flush() } }
    }

    public func unsubscribe(_ channel: String) {
        let schedule = state.withLockedValue { state -> Bool in
            guard let count = state.counts[channel] else { return false }
            guard count == 1 else {
                state.counts[channel] = count - 1
                return false
            }
            state.counts[channel] = nil
            if state.toSubscribe.remove(channel) == nil { state.toUnsubscribe.insert(channel) }
            return scheduleFlush(&state)
        }
        if schedule { eventLoop.execute { self.flush() } }
    }

    private func scheduleFlush(_ state: inout State) -> Bool {
        guard !state.flushScheduled else { return false }
        state.flushScheduled = true
        return true
    }

    private func flush() {
        let (connection, subscribe, unsubscribe) = state.withLockedValue { state in
            state.flushScheduled = false
            defer {
                state.toSubscribe = []
                state.toUnsubscribe = []
            }
            // Without a connection the next connect subscribes to `counts` anyway.
            return (state.connection, state.toSubscribe, state.toUnsubscribe)
        }
        guard let connection, connection.isActive else { return }
        send(subscribe: false, Array(unsubscribe), on: connection)
        send(subscribe: true, Array(subscribe), on: connection)
    }

    /// (UN)SUBSCRIBE in batches of 512; sharded, one SSUBSCRIBE or SUNSUBSCRIBE per slot, which
    /// is all a cluster node takes in one command.
    private func send(subscribe: Bool, _ channels: [String], on connection: RedisConnection) {
        guard sharded else {
            return Self.send(subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", channels, on: connection)
        }
        for (_, group) in Dictionary(grouping: channels, by: RedisClusterSlot.of) {
            Self.send(subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE", group, on: connection)
        }
    }

    private static func send(_ command: String, _ channels: [String], on connection: RedisConnection) {
        var start = 0
        while start < channels.count {
            let end = min(channels.count, start + 512)
            connection.sendWithoutReply(RESPCommand(command, Array(channels[start..<end])))
            start = end
        }
    }

    /// Subscribes again to those of `channels` still wanted (the server dropped them).
    public func resubscribe(_ channels: [String]) {
        let schedule = state.withLockedValue { state -> Bool in
            let wanted = channels.filter { state.counts[$0] != nil }
            guard !wanted.isEmpty else { return false }
            state.toSubscribe.formUnion(wanted)
            return scheduleFlush(&state)
        }
        if schedule { eventLoop.execute { self.flush() } }
    }

    /// Forgets `channel` whatever its count (it moves to another shard's subscriber); returns the count.
    public func remove(_ channel: String) -> Int {
        let (count, schedule) = state.withLockedValue { state -> (Int, Bool) in
            guard let count = state.counts.removeValue(forKey: channel) else { return (0, false) }
            state.confirmed.remove(channel)
            if state.toSubscribe.remove(channel) == nil { state.toUnsubscribe.insert(channel) }
            return (count, scheduleFlush(&state))
        }
        if schedule { eventLoop.execute { self.flush() } }
        return count
    }

    /// Adds `count` references to `channel` at once (it arrives from another shard's subscriber).
    public func add(_ channel: String, count: Int) {
        guard count > 0 else { return }
        let schedule = state.withLockedValue { state -> Bool in
            state.counts[channel, default: 0] += count
            guard state.counts[channel] == count else { return false }
            if state.toUnsubscribe.remove(channel) == nil { state.toSubscribe.insert(channel) }
            return scheduleFlush(&state)
        }
        if schedule { eventLoop.execute { self.flush() } }
    }

    /// The channels subscribed to, as far as this process wants them.
    public var channels: Set<String> {
        state.withLockedValue { Set($0.counts.keys) }
    }

    public var isConnected: Bool {
        state.withLockedValue { $0.connection?.isActive ?? false }
    }

    /// Returns once the server confirmed the subscription to `channel`, so that nothing
    /// published from now on is missed. Throws `RedisError.timeout` after `timeout`.
    public func waitUntilSubscribed(_ channel: String, timeout: Duration = .seconds(5)) async throws {
        let id: Int? = state.withLockedValue { state in
            if state.confirmed.contains(channel) { return nil }
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        guard let id else { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let confirmedMeanwhile = state.withLockedValue { state -> Bool in
                if state.confirmed.contains(channel) { return true }
                state.waiters[channel, default: []].append(Waiter(id: id, continuation: continuation))
                return false
            }
            if confirmedMeanwhile {
                continuation.resume()
                return
            }
            eventLoop.scheduleTask(in: timeout.timeAmount) {
                let waiter: Waiter? = self.state.withLockedValue { state in
                    guard let index = state.waiters[channel]?.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters[channel]!.remove(at: index)
                }
                waiter?.continuation.resume(throwing: RedisError.timeout)
            }
        }
    }

    // MARK: Pushes

    private func received(_ push: RESPValue) {
        if case .error(let message) = push { return refused(message) }
        guard let elements = push.elements, let kind = elements.first?.string, elements.count >= 3,
            let channel = elements[1].string
        else { return }
        switch kind {
        case "message", "smessage":
            guard case .bulkString(let payload) = elements[2] else { return }
            events.message(channel, payload)
        case "subscribe", "ssubscribe":
            let waiters = state.withLockedValue { state -> [Waiter] in
                state.confirmed.insert(channel)
                return state.waiters.removeValue(forKey: channel) ?? []
            }
            for waiter in waiters { waiter.continuation.resume() }
        case "unsubscribe", "sunsubscribe":
            // Still wanted and not about to be subscribed: the server dropped it (a slot migrated away).
            let lost = state.withLockedValue { state -> Bool in
                state.confirmed.remove(channel)
                return state.counts[channel] != nil && !state.toSubscribe.contains(channel)
            }
            if lost { events.lost([channel]) }
        default:
            break
        }
    }

    /// A cluster node refused a subscription (`MOVED slot address`): every wanted channel of that slot is lost here.
    private func refused(_ message: String) {
        logger.warning("Redis refused a subscription", metadata: ["error": "\(message)"])
        let parts = message.split(separator: " ")
        guard parts.count >= 2, let slot = Int(parts[1]) else { return }
        let lost = state.withLockedValue { state in state.counts.keys.filter { RedisClusterSlot.of($0) == slot } }
        if !lost.isEmpty { events.lost(lost) }
    }

    // MARK: Connection upkeep

    /// Keeps the connection up until `shutdown()`.
    public func run() async {
        var failures = 0
        var everConnected = false
        while !state.withLockedValue({ $0.isShutDown }) {
            do {
                let connection = try await endpoint.connect(
                    on: eventLoop, name: "tickwire-subscriber", onPush: { [weak self] push in self?.received(push) })
                let channels = state.withLockedValue { state -> [String]? in
                    guard !state.isShutDown else { return nil }
                    state.connection = connection
                    state.confirmed = []
                    state.toSubscribe = []
                    state.toUnsubscribe = []
                    return Array(state.counts.keys)
                }
                guard let channels else {
                    await connection.close()
                    return
                }
                send(subscribe: true, channels, on: connection)
                logger.info("Redis subscriber connected", metadata: [
                    "redis": "\(connection.configuration.redacted)", "channels": "\(channels.count)",
                    "resp": "\(connection.protocolVersion)",
                ])
                failures = 0
                events.connected(everConnected, Set(channels))
                everConnected = true
                await keepAlive(connection)
                let channelsDropped = state.withLockedValue { state -> Set<String>? in
                    state.connection = nil
                    state.confirmed = []
                    return state.isShutDown ? nil : Set(state.counts.keys)
                }
                if let channelsDropped {
                    logger.warning("Redis subscriber disconnected", metadata: ["redis": "\(configuration.redacted)"])
                    events.disconnected(channelsDropped)
                }
            } catch {
                if failures == 0 {
                    logger.warning("Redis subscriber cannot connect", metadata: [
                        "redis": "\(configuration.redacted)", "error": "\(error)",
                    ])
                }
                failures += 1
            }
            guard !state.withLockedValue({ $0.isShutDown }) else { return }
            await pause(for: backoff.delay(attempt: failures))
        }
    }

    /// Closes the connection to the old master; a reconnect waiting out its backoff starts now.
    private func masterMoved() {
        let connection = state.withLockedValue { state in
            state.retryNow = true
            return state.connection
        }
        connection?.channel.close(promise: nil)
    }

    /// Sleeps `delay`, in short steps so that a moved master or a shutdown ends it early.
    private func pause(for delay: Duration) async {
        let end = ContinuousClock.now + delay
        while ContinuousClock.now < end {
            let wake = state.withLockedValue { state in
                defer { state.retryNow = false }
                return state.retryNow || state.isShutDown
            }
            if wake { return }
            try? await Task.sleep(for: min(.milliseconds(50), end - ContinuousClock.now))
        }
    }

    /// PINGs while the connection lives; returns when it closed or stopped answering.
    private func keepAlive(_ connection: RedisConnection) async {
        while connection.isActive, !state.withLockedValue({ $0.isShutDown }) {
            try? await Task.sleep(for: pingInterval)
            guard connection.isActive else { break }
            do {
                _ = try await connection.sendRaw(RESPCommand("PING"), timeout: pingTimeout)
            } catch {
                logger.warning("Redis subscriber liveness probe failed", metadata: ["error": "\(error)"])
                await connection.close()
                break
            }
        }
    }

    public func shutdown() async {
        let (connection, waiters) = state.withLockedValue { state in
            state.isShutDown = true
            defer { state.waiters = [:] }
            return (state.connection, state.waiters.values.flatMap { $0 })
        }
        for waiter in waiters { waiter.continuation.resume(throwing: RedisError.unavailable("subscriber shut down")) }
        await connection?.close()
        if ownsEndpoint { await endpoint.shutdown() }
    }
}

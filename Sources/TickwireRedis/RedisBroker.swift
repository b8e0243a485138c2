import Logging
import NIOConcurrencyHelpers
import NIOCore
import RESP
import TickwireCore
import TickwireProtocol

/// The broker of a cluster: every gateway and the feed share one Redis.
///
/// Prices arrive on `prices:{SYMBOL}` (the gateway subscribes to the channels of
/// every symbol it lists, so a snapshot is current the moment a client subscribes),
/// with the newest of each in the `prices:latest` hash. A notification is stored in
/// the user's stream and published on `notifications:{user}` by one script; the
/// gateway subscribes to a user's channel only while one of its clients wants it.
///
/// After the subscriber connection comes back from a drop, the broker reads each
/// subscribed user's stream from the last id it delivered, holding live events of
/// that user meanwhile, so a blink of the network or of Redis loses nothing. On a
/// cluster that is per shard: a shard's drop holds and catches up only the users whose
/// channels it carries.
///
/// The Redis is one server, a master behind Sentinel (`redis+sentinel://`), or a Redis
/// Cluster (`redis+cluster://`): then keys carry hash tags (`RedisKeys.hashTagged`), the
/// latest price is one key per symbol, and channels are sharded (SPUBLISH, SSUBSCRIBE on
/// the master of each channel's slot); a channel that moves to another master is caught
/// up like a reconnect.
public final class RedisBroker: Broker {
    public struct Settings: Sendable {
        public var keys = RedisKeys()
        /// Events kept per user stream.
        public var notificationCapacity = 1000
        /// How long events are kept, in milliseconds.
        public var retentionMilliseconds: Int64 = 7 * 86_400_000
        /// Symbols whose price channels to follow (a gateway's list; empty for publishers).
        public var symbols: [String] = []
        public var pingInterval: Duration = .seconds(1)
        public var pingTimeout: Duration = .seconds(2)
        /// Replicas that must confirm a notification (`WAIT`) before its publish succeeds; 0: none.
        public var replicasToWait = 0
        /// How long `WAIT` may take before the publish fails as not replicated.
        public var replicaWaitTimeout: Duration = .seconds(1)

        public init() {}
    }

    public struct Metrics: Sendable {
        public var reconnected: @Sendable () -> Void
        public var dropped: @Sendable () -> Void

        public init(reconnected: @escaping @Sendable () -> Void = {}, dropped: @escaping @Sendable () -> Void = {}) {
            self.reconnected = reconnected
            self.dropped = dropped
        }
    }

    public let settings: Settings
    public let configuration: RedisConfiguration
    /// Commands and scripts: a `RedisClient`, or a `RedisClusterClient` on a cluster.
    public let client: any RedisCommands
    /// The server (or, behind Sentinel, the master) the client and the subscriber share; nil on a cluster.
    private let endpoint: (any RedisEndpoint)?
    private let cluster: RedisClusterClient?
    private let subscriber: NIOLockedValueBox<(any RedisPubSub)?>
    private let eventLoop: EventLoop
    private let logger: Logger
    private let metrics: Metrics

    private struct UserState {
        /// The newest id delivered to the gateway, or where following this user began.
        var lastID: StreamID
        /// Live events held from a drop of the subscriber until a catch-up has read the stream
        /// after `lastID`; nil when no catch-up is due.
        var held: [NotificationEnvelope]?
        /// A catch-up task runs for this user.
        var catchingUp = false
        /// Counts the drops (and losses) of this user's channel: a catch-up that read the stream
        /// before the latest must read it again.
        var drops = 0

        /// The channel dropped: live events are held from now until a catch-up has read the stream.
        mutating func hold() {
            drops += 1
            if held == nil { held = [] }
        }

        /// Marks a catch-up as started; false if one is due but already runs, or none is due.
        mutating func startCatchUp() -> Bool {
            guard held != nil, !catchingUp else { return false }
            catchingUp = true
            return true
        }
    }

    private struct State {
        var delegate: (any BrokerDelegate)?
        var users: [String: UserState] = [:]
        var subscriberTask: Task<Void, Never>?
    }
    private let state = NIOLockedValueBox(State())

    public init(
        configuration: RedisConfiguration, settings: Settings, eventLoop: EventLoop, logger: Logger,
        metrics: Metrics = Metrics()
    ) {
        var settings = settings
        settings.keys = RedisKeys(prefix: settings.keys.prefix, hashTagged: configuration.clusterSeeds != nil)
        self.settings = settings
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.metrics = metrics
        if configuration.clusterSeeds != nil {
            let cluster = RedisClusterClient(configuration: configuration, eventLoop: eventLoop, name: "tickwire", logger: logger)
            self.cluster = cluster
            self.endpoint = nil
            self.client = cluster
        } else {
            let endpoint = configuration.endpoint(eventLoop: eventLoop, logger: logger)
            self.cluster = nil
            self.endpoint = endpoint
            self.client = RedisClient(endpoint: endpoint, eventLoop: eventLoop, name: "tickwire", logger: logger)
        }
        self.subscriber = NIOLockedValueBox(nil)
    }

    // MARK: Lifecycle

    public func start(delegate: any BrokerDelegate) async {
        let events = RedisSubscriber.Events(
            message: { [weak self] channel, payload in self?.received(channel: channel, payload: payload) },
            connected: { [weak self] reconnected, channels in self?.subscriberConnected(reconnected: reconnected, channels: channels) },
            disconnected: { [weak self] channels in self?.subscriberDisconnected(channels: channels) },
            lost: { [weak self] channels in self?.channelsLost(channels) })
        let subscriber: any RedisPubSub
        if let cluster {
            subscriber = RedisShardedSubscriber(
                cluster: cluster, eventLoop: eventLoop, logger: logger, events: events,
                pingInterval: settings.pingInterval, pingTimeout: settings.pingTimeout)
        } else {
            subscriber = RedisSubscriber(
                endpoint: endpoint!, eventLoop: eventLoop, logger: logger, events: events,
                pingInterval: settings.pingInterval, pingTimeout: settings.pingTimeout)
        }
        self.subscriber.withLockedValue { $0 = subscriber }
        for symbol in settings.symbols { subscriber.subscribe(settings.keys.priceChannel(symbol)) }
        // The delegate first: a subscriber that connects at once would otherwise report ready to
        // nobody, and the gateway would stay unready until the next reconnect (seen on a loaded CI).
        state.withLockedValue { $0.delegate = delegate }
        let task = Task { await subscriber.run() }
        state.withLockedValue { $0.subscriberTask = task }
    }

    public func shutdown() async {
        let task = state.withLockedValue { state -> Task<Void, Never>? in
            state.delegate = nil
            return state.subscriberTask
        }
        await subscriber.withLockedValue { $0 }?.shutdown()
        await task?.value
        await client.shutdown()
        await endpoint?.shutdown()
    }

    public var isReady: Bool { subscriber.withLockedValue { $0 }?.isConnected ?? false }

    /// A subscriber connection carrying `channels` is up: their users held since it dropped are caught up.
    private func subscriberConnected(reconnected: Bool, channels: Set<String>) {
        let (delegate, due) = state.withLockedValue { state in
            var due: [String] = []
            forEachFollowedUser(on: channels, in: &state) { userID, user in
                if user.startCatchUp() { due.append(userID) }
            }
            return (state.delegate, due)
        }
        // On a cluster, one shard's subscriber may be up while another is still away.
        delegate?.broker(readinessChanged: isReady)
        if reconnected {
            metrics.reconnected()
            logger.info("Redis subscriber back: catching up its users", metadata: ["users": "\(due.count)", "channels": "\(channels.count)"])
        }
        for user in due { catchUp(user: user) }
    }

    /// From here on, each followed user's live events are held until a catch-up has read what the
    /// stream got meanwhile. Held from the drop, not from the reconnect: a live event delivered
    /// before the catch-up began would move the user past the gap, and the gap would be lost.
    /// On a cluster only the users of the dropped shard's `channels` are held.
    private func subscriberDisconnected(channels: Set<String>) {
        let delegate = state.withLockedValue { state in
            forEachFollowedUser(on: channels, in: &state) { _, user in user.hold() }
            return state.delegate
        }
        delegate?.broker(readinessChanged: false)
    }

    /// On a cluster, these channels moved to another master (or a node dropped them): what was
    /// published on them meanwhile went nowhere. Their users are caught up as after a reconnect.
    private func channelsLost(_ channels: [String]) {
        let due = state.withLockedValue { state -> [String] in
            var due: [String] = []
            forEachFollowedUser(on: channels, in: &state) { userID, user in
                user.hold()
                if user.startCatchUp() { due.append(userID) }
            }
            return due
        }
        for user in due { catchUp(user: user) }
    }

    /// Calls `body` with each followed user whose notification channel is among `channels` (price channels are skipped).
    private func forEachFollowedUser(
        on channels: some Sequence<String>, in state: inout State, _ body: (String, inout UserState) -> Void
    ) {
        let keys = settings.keys
        for channel in channels where channel.hasPrefix(keys.notificationChannelPrefix) {
            let userID = keys.user(ofNotificationChannel: channel)
            if state.users[userID] != nil { body(userID, &state.users[userID]!) }
        }
    }

    // MARK: Interest

    public func setInterest(_ channel: BrokerChannel, active: Bool) {
        guard case .notifications(let userID) = channel else { return }  // price channels: always followed
        let subscriber = self.subscriber.withLockedValue { $0 }
        let channelName = settings.keys.notificationChannel(userID)
        if active {
            // Events from a moment before now on are caught up after a reconnect.
            let start = StreamID(milliseconds: UInt64(max(0, Timestamp.now().millisecondsSinceEpoch - 1000)), sequence: 0)
            // Subscribed first, so that a drop of the connection that carries the channel from
            // now on holds this user; asked under the lock, so that a drop before it is seen here.
            subscriber?.subscribe(channelName)
            state.withLockedValue { state in
                // Followed while its channel's connection is away: caught up when that is back.
                guard state.users[userID] == nil else { return }
                let up = subscriber?.isConnected(channel: channelName) ?? false
                state.users[userID] = UserState(lastID: start, held: up ? nil : [])
            }
        } else {
            _ = state.withLockedValue { $0.users.removeValue(forKey: userID) }
            subscriber?.unsubscribe(channelName)
        }
    }

    // MARK: Receiving

    private func received(channel: String, payload: ByteBuffer) {
        let keys = settings.keys
        let parsed = payload.withUnsafeReadableBytes { try? JSONParser.parse($0).objectValue }
        if channel.hasPrefix(keys.priceChannelPrefix) {
            guard let object = parsed, let price = try? PriceUpdate(json: object, receivedAt: .now()) else {
                return drop("an invalid price on \(channel)")
            }
            state.withLockedValue { $0.delegate }?.broker(didReceive: [price])
        } else if channel.hasPrefix(keys.notificationChannelPrefix) {
            let userID = keys.user(ofNotificationChannel: channel)
            guard let object = parsed, let envelope = try? NotificationEnvelope(json: object) else {
                return drop("an invalid notification on \(channel)")
            }
            deliver([envelope], to: userID, live: true)
        }
    }

    private func drop(_ what: String) {
        metrics.dropped()
        logger.warning("dropped \(what)")
    }

    /// A live event: held while a catch-up for its user runs, otherwise delivered unless already delivered.
    /// The lock is held while the delegate is called, so each user's events reach it in id order.
    private func deliver(_ events: [NotificationEnvelope], to userID: String, live: Bool) {
        state.withLockedValue { state in
            guard var user = state.users[userID] else { return }
            if live, user.held != nil {
                user.held!.append(contentsOf: events)
            } else {
                Self.deliver(events, to: userID, user: &user, delegate: state.delegate)
            }
            state.users[userID] = user
        }
    }

    private static func deliver(
        _ events: [NotificationEnvelope], to userID: String, user: inout UserState, delegate: (any BrokerDelegate)?
    ) {
        for event in events where event.id > user.lastID {
            user.lastID = event.id
            delegate?.broker(didReceive: event, forUser: userID)
        }
    }

    /// Reads what a user's stream got while the subscriber was away, then releases the live
    /// events held meanwhile. Until a read succeeds after the latest drop, the live events stay
    /// held: delivering them without it would move the user past what the stream got meanwhile,
    /// and lose it for good (the chaos test that cuts the Redis link found this when a cut fell
    /// during a catch-up).
    private func catchUp(user userID: String) {
        let channel = settings.keys.notificationChannel(userID)
        Task {
            var delay = Duration.milliseconds(100)
            while true {
                let start = state.withLockedValue { state in
                    state.users[userID].map { (since: $0.lastID, drops: $0.drops) }
                }
                guard let start else { return }
                let replay: NotificationReplay
                do {
                    replay = try await self.replay(userID: userID, after: start.since)
                } catch {
                    guard isFollowing(userID) else { return }
                    logger.warning("could not catch up on notifications after a reconnect: trying again", metadata: [
                        "user": "\(userID)", "error": "\(error)", "retry_in": "\(delay)",
                    ])
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(2))
                    continue
                }
                let subscriber = self.subscriber.withLockedValue { $0 }
                let done = state.withLockedValue { state -> Bool in
                    guard var user = state.users[userID] else { return true }
                    Self.deliver(replay.events + (user.held ?? []), to: userID, user: &user, delegate: state.delegate)
                    // Dropped again since the read began: what the stream got meanwhile is unread.
                    // Read again now if the connection is back, else when it is.
                    let again = user.drops != start.drops
                    user.held = again ? [] : nil
                    user.catchingUp = again && (subscriber?.isConnected(channel: channel) ?? false)
                    state.users[userID] = user
                    return !user.catchingUp
                }
                if done { return }
            }
        }
    }

    /// Whether the broker still delivers `userID`'s events: a local client follows the user, and
    /// the broker has not shut down.
    private func isFollowing(_ userID: String) -> Bool {
        state.withLockedValue { $0.delegate != nil && $0.users[userID] != nil }
    }

    // MARK: Publishing and reading

    /// One script per price, all sent at once: the connection pipelines them in one flush.
    public func publish(prices: [PriceUpdate]) async throws {
        let now = Timestamp.nowMicroseconds()
        let client = self.client
        let keys = settings.keys
        try await withThrowingTaskGroup(of: Void.self) { group in
            for price in prices {
                let payload = String(decoding: price.brokerPayload(publishedAtMicroseconds: now), as: UTF8.self)
                group.addTask {
                    if keys.hashTagged {
                        _ = try await client.evaluate(
                            RedisScripts.publishPriceSharded, keys: [keys.latestPrice(price.symbol), keys.priceChannel(price.symbol)],
                            arguments: [payload])
                    } else {
                        _ = try await client.evaluate(
                            RedisScripts.publishPrice, keys: [keys.latestPrices, keys.priceChannel(price.symbol)],
                            arguments: [price.symbol, payload])
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    public func latestPrices() async throws -> [PriceUpdate] {
        let keys = settings.keys
        let payloads: [RESPValue]
        if keys.hashTagged {
            // One GET per symbol, all at once: each node's client pipelines its own, one round trip per shard.
            let client = self.client
            payloads = try await withThrowingTaskGroup(of: RESPValue.self) { group in
                for symbol in settings.symbols {
                    group.addTask { try await client.send(RESPCommand("GET", [keys.latestPrice(symbol)]), key: keys.latestPrice(symbol)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        } else {
            let reply = try await client.send(RESPCommand("HGETALL", [keys.latestPrices]), key: keys.latestPrices)
            guard let pairs = reply.pairs else { throw RedisError.unexpectedReply("HGETALL: \(reply)") }
            payloads = pairs.map(\.value)
        }
        return payloads.compactMap { value in
            guard case .bulkString(let payload) = value,
                let object = payload.withUnsafeReadableBytes({ try? JSONParser.parse($0).objectValue })
            else { return nil }
            return try? PriceUpdate(json: object, receivedAt: .now())
        }
    }

    public func publish(notification kind: NotificationKind, data: JSONObject, userID: String) async throws
        -> NotificationEnvelope
    {
        let timestamp = Timestamp.now()
        let reply = try await client.evaluate(
            RedisScripts.publishNotification,
            keys: [settings.keys.notificationStream(userID), settings.keys.notificationChannel(userID)],
            arguments: [
                kind.rawValue, data.jsonText, timestamp.rfc3339, String(settings.notificationCapacity),
                String(settings.retentionMilliseconds),
            ] + (settings.keys.hashTagged ? ["sharded"] : []),
            replicas: settings.replicasToWait, replicaTimeout: settings.replicaWaitTimeout)
        guard let text = reply.string, let id = StreamID(text) else {
            throw RedisError.unexpectedReply("the publish script returned \(reply)")
        }
        return NotificationEnvelope(id: id, kind: kind, data: data, timestamp: timestamp)
    }

    public func replay(userID: String, after since: StreamID) async throws -> NotificationReplay {
        // Live delivery must be on before the stream is read, or an event published in between is lost.
        try await subscriber.withLockedValue { $0 }?.waitUntilSubscribed(settings.keys.notificationChannel(userID), timeout: .seconds(5))
        let reply = try await client.evaluate(
            RedisScripts.replay, keys: [settings.keys.notificationStream(userID)],
            arguments: [since.description, String(settings.notificationCapacity)])
        guard let parts = reply.elements, parts.count == 3, let exists = parts[0].int,
            let deleted = parts[1].string.flatMap({ StreamID($0) }), let entries = parts[2].elements
        else { throw RedisError.unexpectedReply("the replay script returned \(reply)") }
        var events: [NotificationEnvelope] = []
        for entry in entries {
            guard let pair = entry.elements, pair.count == 2, let idText = pair[0].string, let id = StreamID(idText),
                let fields = pair[1].pairs
            else { continue }
            var values: [String: String] = [:]
            for field in fields { if let key = field.key.string { values[key] = field.value.string } }
            guard let kind = values["event"].flatMap(NotificationKind.init(rawValue:)),
                let data = values["data"].flatMap({ try? JSONParser.parse($0).objectValue })
            else { continue }
            let timestamp = values["timestamp"].flatMap { Timestamp(rfc3339: $0) }
                ?? Timestamp(millisecondsSinceEpoch: Int64(id.milliseconds))
            events.append(NotificationEnvelope(id: id, kind: kind, data: data, timestamp: timestamp))
        }
        return NotificationReplay(events: events, recovered: exists == 1 && since >= deleted)
    }
}

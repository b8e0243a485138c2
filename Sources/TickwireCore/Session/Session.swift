import DequeModule
import NIOCore
import TickwireProtocol

/// One client connection's protocol, as a value: it takes events (a frame, a sweep
/// tick, a replay result, a live notification) and returns what the connection must
/// do. It never touches a socket, so every rule of the protocol is testable without one.
///
/// Times are passed in: `now` is a monotonic clock in nanoseconds (rate limits,
/// heartbeat), `wallClock` is UTC (token expiry, timestamps).
public struct Session {
    public enum Action {
        case send(ServerMessage)
        case addPriceSubscriptions([Int])
        case removePriceSubscriptions([Int])
        /// Send a `price_batch` with the latest price of these symbols.
        case sendSnapshot([Int])
        case addNotificationSubscription(userID: String)
        case removeNotificationSubscription(userID: String)
        /// Read the stored events after `since`, then call `replayFinished`.
        case startReplay(userID: String, since: StreamID)
        /// Write the catch-up (`nextCatchUpItem`) as fast as the client reads it.
        case streamCatchUp
        case close(CloseCode, reason: String)
    }

    /// The state of the user's notification subscription.
    enum Notifications {
        case none
        /// A `since` replay is being read from the store; live events wait in `held`.
        case replaying(since: StreamID, requestID: RequestID?, held: Deque<HeldNotification>, overflowed: Bool)
        /// The stored events are being written, no faster than the client reads them; live events
        /// still wait in `held`, and follow the stored ones. `lastID` is the newest one written.
        case catchingUp(stored: Deque<NotificationEnvelope>, held: Deque<HeldNotification>, lastID: StreamID)
        /// Live; ids at or below `lastID` were already delivered and are dropped.
        case live(lastID: StreamID?)
    }

    /// A live notification held during a replay: its id and its frame, encoded once for all connections.
    struct HeldNotification {
        var id: StreamID
        var frame: ByteBuffer
    }

    /// What becomes of a live notification.
    public enum LiveNotification {
        /// Write this frame now.
        case write(ByteBuffer)
        /// Nothing to write: a duplicate, or held until a replay finishes.
        case none
        /// More arrived during a catch-up than can be held: the connection must be cut (4009) and
        /// catch up again with `since`, rather than lose one silently.
        case tooFarBehind
    }

    /// One frame of a catch-up.
    public enum CatchUpItem {
        /// A stored event, to encode for this connection.
        case stored(NotificationEnvelope)
        /// A live event that was held, already encoded.
        case live(ByteBuffer)
    }

    public let settings: SessionSettings
    public private(set) var userID: String
    public private(set) var expiresAt: Timestamp
    public private(set) var symbols = SymbolSet()
    var notifications = Notifications.none
    private(set) var lastInbound: UInt64
    private var frames: SlidingWindowLimit
    private var subscriptionChanges: SuspendingLimit
    private var pings: SuspendingLimit

    /// Starts a session for a verified token and returns the `connected` frame to send.
    public init(settings: SessionSettings, token: VerifiedToken, now: UInt64) {
        self.settings = settings
        self.userID = token.subject
        self.expiresAt = token.expiresAt
        self.lastInbound = now
        let limits = settings.limits
        self.frames = SlidingWindowLimit(limit: limits.framesPerWindow, windowNanoseconds: limits.windowNanoseconds)
        self.subscriptionChanges = SuspendingLimit(
            limit: limits.subscriptionChangesPerWindow, windowNanoseconds: limits.windowNanoseconds,
            suspensionNanoseconds: limits.suspensionNanoseconds)
        self.pings = SuspendingLimit(
            limit: limits.pingsPerWindow, windowNanoseconds: limits.windowNanoseconds,
            suspensionNanoseconds: limits.suspensionNanoseconds)
    }

    /// The first frame of the session. The connection id is not kept: nothing after this frame needs it.
    public func connectedMessage(connectionID: String) -> ServerMessage {
        .connected(ServerMessage.Connected(
            connectionID: connectionID, userID: userID,
            heartbeatIntervalMilliseconds: settings.heartbeatIntervalMilliseconds,
            heartbeatTimeoutMilliseconds: Int(settings.heartbeatTimeoutNanoseconds / 1_000_000),
            expiresAt: expiresAt))
    }

    /// The actions for a connection whose token was refused: one error, then close 4001.
    public static func refused(_ rejection: TokenRejection) -> [Action] {
        [.send(.error(ProtocolViolation(rejection.errorCode, rejection.message), requestID: nil)),
         .close(.authenticationFailed, reason: rejection.errorCode.rawValue)]
    }

    // MARK: Inbound

    /// Any frame at all, control frames included, proves the client alive and counts
    /// toward the abuse limit. Returns a close action when the client sent too many.
    public mutating func frameReceived(now: UInt64) -> Action? {
        lastInbound = now
        guard frames.record(now: now) else {
            return .close(.policyViolation, reason: "more than \(settings.limits.framesPerWindow) frames per minute")
        }
        return nil
    }

    /// A text frame's content, after `frameReceived`. Also returns the frame's action name for
    /// metrics (`invalid` when it does not parse), whatever the reply.
    public mutating func textReceived(
        _ bytes: some Collection<UInt8>, now: UInt64, wallClock: Timestamp
    ) -> (actions: [Action], actionName: String) {
        switch ClientMessage.parse(bytes) {
        case .success(let message):
            return (handle(message, now: now, wallClock: wallClock), message.action.name)
        case .failure(let rejected):
            return ([.send(.error(rejected.violation, requestID: rejected.requestID))], "invalid")
        }
    }

    /// The first message of a connection that came without a token: it must be
    /// `{"action":"auth","token":...}` with a valid token; anything else is refused.
    public static func authenticate(firstMessage bytes: some Collection<UInt8>, verifier: JWTVerifier, now: Timestamp)
        -> Result<VerifiedToken, TokenRejection>
    {
        guard case .success(let message) = ClientMessage.parse(bytes), case .auth(let token) = message.action else {
            return .failure(.missing)
        }
        return verifier.verify(token, now: now)
    }

    /// A binary frame, after `frameReceived`: the protocol is text only.
    public func binaryReceived() -> [Action] {
        [.send(.error(ProtocolViolation(.invalidMessage, "binary frames are not supported: send JSON text"), requestID: nil))]
    }

    public mutating func handle(_ message: ClientMessage, now: UInt64, wallClock: Timestamp) -> [Action] {
        let requestID = message.requestID
        if message.action.isSubscriptionChange {
            if case .refused(let retryAfter) = subscriptionChanges.check(now: now) {
                return [rateLimited("subscriptions", retryAfter: retryAfter, requestID: requestID)]
            }
        }
        switch message.action {
        case .subscribePrices(let requested):
            return subscribe(requested, requestID: requestID)
        case .unsubscribePrices(let requested):
            return unsubscribe(requested, requestID: requestID)
        case .subscribeNotifications(let user, let since):
            return subscribeNotifications(user: user, since: since, requestID: requestID)
        case .unsubscribeNotifications(let user):
            return unsubscribeNotifications(user: user, requestID: requestID)
        case .ping:
            if case .refused(let retryAfter) = pings.check(now: now) {
                return [rateLimited("ping", retryAfter: retryAfter, requestID: requestID)]
            }
            return [.send(.pong(requestID: requestID))]
        case .auth(let token):
            return reauthenticate(token, wallClock: wallClock, requestID: requestID)
        }
    }

    func rateLimited(_ limit: String, retryAfter: Int, requestID: RequestID?) -> Action {
        .send(.error(
            ProtocolViolation(
                .rateLimited, "too many \(limit == "ping" ? "pings" : "subscription changes"): suspended",
                details: ["limit": .string(limit), "retry_after_ms": .number(String(retryAfter))]),
            requestID: requestID))
    }

    // MARK: Prices

    mutating func subscribe(_ requested: [String], requestID: RequestID?) -> [Action] {
        let table = settings.symbols
        var known: [Int] = []
        var unknown: [String] = []
        for symbol in requested {
            if let index = table.index(of: symbol) { known.append(index) } else { unknown.append(symbol) }
        }
        let added = known.filter { !symbols.contains($0) }
        let maximum = settings.limits.maximumSymbolsPerConnection
        if symbols.count + added.count > maximum {
            return [.send(.error(
                ProtocolViolation(
                    .subscriptionLimit, "a connection holds at most \(maximum) symbols",
                    details: ["max": .number(String(maximum)), "subscribed": .number(String(symbols.count))]),
                requestID: requestID))]
        }
        var actions: [Action] = []
        if !known.isEmpty {
            for index in added { symbols.insert(index) }
            if !added.isEmpty { actions.append(.addPriceSubscriptions(added)) }
            actions.append(.send(.subscribedPrices(symbols: subscribedSymbols, requestID: requestID)))
            if !added.isEmpty { actions.append(.sendSnapshot(added)) }
        }
        if !unknown.isEmpty {
            actions.append(.send(.error(
                ProtocolViolation(
                    .unknownSymbol, "unknown symbols: " + unknown.joined(separator: ", "),
                    details: ["symbols": .array(unknown.map { .string($0) })]),
                requestID: requestID)))
        }
        return actions
    }

    mutating func unsubscribe(_ requested: [String], requestID: RequestID?) -> [Action] {
        var removed: [Int] = []
        if requested.isEmpty {
            removed = Array(symbols)
            symbols.removeAll()
        } else {
            for symbol in requested {
                if let index = settings.symbols.index(of: symbol), symbols.remove(index) { removed.append(index) }
            }
        }
        var actions: [Action] = []
        if !removed.isEmpty { actions.append(.removePriceSubscriptions(removed)) }
        actions.append(.send(.unsubscribedPrices(symbols: subscribedSymbols, requestID: requestID)))
        return actions
    }

    /// The connection's symbols in table order.
    public var subscribedSymbols: [String] {
        symbols.map { settings.symbols[$0] }
    }

    // MARK: Notifications

    mutating func subscribeNotifications(user: String, since: StreamID?, requestID: RequestID?) -> [Action] {
        guard user == userID else {
            return [.send(.error(
                ProtocolViolation(.forbidden, "user_id must be the token's subject"), requestID: requestID))]
        }
        var actions: [Action] = []
        var lastID: StreamID? = nil
        switch notifications {
        case .none: actions.append(.addNotificationSubscription(userID: user))
        case .live(let last): lastID = last
        case .catchingUp(_, _, let last): lastID = last  // the rest of that catch-up is superseded
        case .replaying: break  // the earlier replay's result is superseded by this one
        }
        if let since {
            notifications = .replaying(since: since, requestID: requestID, held: [], overflowed: false)
            actions.append(.startReplay(userID: user, since: since))
        } else {
            notifications = .live(lastID: lastID)
            actions.append(.send(.subscribedNotifications(userID: user, recovered: false, requestID: requestID)))
        }
        return actions
    }

    mutating func unsubscribeNotifications(user: String, requestID: RequestID?) -> [Action] {
        guard user == userID else {
            return [.send(.error(
                ProtocolViolation(.forbidden, "user_id must be the token's subject"), requestID: requestID))]
        }
        var actions: [Action] = []
        if case .none = notifications {} else { actions.append(.removeNotificationSubscription(userID: user)) }
        notifications = .none
        actions.append(.send(.unsubscribedNotifications(userID: user, requestID: requestID)))
        return actions
    }

    /// A live notification for this user, encoded once for all its connections: written now,
    /// dropped as a duplicate, held while a replay runs, or too many to hold.
    public mutating func liveNotification(id: StreamID, frame: ByteBuffer) -> LiveNotification {
        let limit = settings.limits.maximumBufferedDuringReplay
        switch notifications {
        case .none:
            return .none
        case .live(let lastID):
            if let lastID, id <= lastID { return .none }
            notifications = .live(lastID: id)
            return .write(frame)
        case .replaying(let since, let requestID, var held, var overflowed):
            notifications = .none  // so that `held` is the only reference and appends in place
            if held.count < limit {
                held.append(HeldNotification(id: id, frame: frame))
            } else {
                overflowed = true  // reported to the client as `recovered: false`
            }
            notifications = .replaying(since: since, requestID: requestID, held: held, overflowed: overflowed)
            return .none
        case .catchingUp(let stored, var held, let lastID):
            // `subscribed` is out already, so an overflow can no longer be reported as `recovered: false`.
            guard held.count < limit else { return .tooFarBehind }
            notifications = .none
            held.append(HeldNotification(id: id, frame: frame))
            notifications = .catchingUp(stored: stored, held: held, lastID: lastID)
            return .none
        }
    }

    /// The stored events after `since` (nil when the store could not be read): sends
    /// `subscribed`, then starts the catch-up through `nextCatchUpItem`.
    public mutating func replayFinished(since: StreamID, events: [NotificationEnvelope]?, recovered: Bool) -> [Action] {
        guard case .replaying(let pendingSince, let requestID, let held, let overflowed) = notifications,
            pendingSince == since
        else { return [] }  // unsubscribed meanwhile, or superseded by a newer subscribe
        notifications = .catchingUp(stored: Deque(events ?? []), held: held, lastID: since)
        return [
            .send(.subscribedNotifications(
                userID: userID, recovered: events != nil && recovered && !overflowed, requestID: requestID)),
            .streamCatchUp,
        ]
    }

    /// The next frame of the catch-up: the stored events in order, then the held live ones, each
    /// id once. Nil when there is none left, and the subscription is then live.
    public mutating func nextCatchUpItem() -> CatchUpItem? {
        guard case .catchingUp(var stored, var held, let lastID) = notifications else { return nil }
        notifications = .none  // the deques are uniquely referenced while they shrink
        while let event = stored.popFirst() {
            guard event.id > lastID else { continue }
            notifications = .catchingUp(stored: stored, held: held, lastID: event.id)
            return .stored(event)
        }
        while let next = held.popFirst() {
            guard next.id > lastID else { continue }
            notifications = .catchingUp(stored: stored, held: held, lastID: next.id)
            return .live(next.frame)
        }
        notifications = .live(lastID: lastID)
        return nil
    }

    public var isCatchingUp: Bool {
        if case .catchingUp = notifications { return true }
        return false
    }

    public var isSubscribedToNotifications: Bool {
        if case .none = notifications { return false }
        return true
    }

    // MARK: Token refresh and expiry

    mutating func reauthenticate(_ token: String, wallClock: Timestamp, requestID: RequestID?) -> [Action] {
        switch settings.verifier.verify(token, now: wallClock) {
        case .failure(let rejection):
            return [.send(.error(ProtocolViolation(rejection.errorCode, rejection.message), requestID: requestID))]
        case .success(let verified):
            guard verified.subject == userID else {
                return [.send(.error(
                    ProtocolViolation(.forbidden, "a refreshed token must carry the same sub"), requestID: requestID))]
            }
            expiresAt = verified.expiresAt
            return [.send(.authenticated(userID: userID, expiresAt: expiresAt, requestID: requestID))]
        }
    }

    /// The periodic check of one connection: silence past the heartbeat timeout closes
    /// with 4008, a token past `exp` (and the leeway) with `TOKEN_EXPIRED` and 4001.
    public func sweep(now: UInt64, wallClock: Timestamp) -> [Action] {
        if now > lastInbound, now - lastInbound >= settings.heartbeatTimeoutNanoseconds {
            return [.close(.heartbeatTimeout, reason: "heartbeat timeout")]
        }
        let deadline = expiresAt.millisecondsSinceEpoch + settings.verifier.leewayMilliseconds
        if wallClock.millisecondsSinceEpoch >= deadline {
            return [.send(.error(ProtocolViolation(.tokenExpired, "the token has expired"), requestID: nil)),
                    .close(.authenticationFailed, reason: "TOKEN_EXPIRED")]
        }
        return []
    }
}

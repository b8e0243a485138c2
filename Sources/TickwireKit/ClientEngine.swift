import TickwireProtocol

/// What the public API asks of the engine, in the order the app asked.
enum ClientCommand: Sendable {
    case addPrices(id: Int, symbols: [String], AsyncStream<PriceUpdate>.Continuation)
    case removePrices(id: Int)
    case addNotifications(id: Int, AsyncStream<WalletEvent>.Continuation)
    case removeNotifications(id: Int)
    case connect
    case suspend
    case resume
    case retryNow
    case close
}

/// The client's connection and subscriptions, on one actor. Every connection attempt has an
/// `epoch`; anything that arrives for an older one (a late frame, a timer, a token) is dropped,
/// so an `await` in the middle of an attempt can never act on a newer one.
actor ClientEngine {
    private enum TimerKind: Hashable {
        case reconnect, ping, silence, refresh, retry, liveness
    }

    /// A subscription change sent to the server and not answered yet. One at a time (CLIENTS.md 7).
    private struct Request {
        enum Kind {
            case subscribePrices([String])
            case unsubscribePrices([String])
            case subscribeNotifications(userID: String, since: StreamID?)
            case unsubscribeNotifications(userID: String)
        }

        var id: RequestID
        var kind: Kind
    }

    private struct PriceStream {
        var symbols: [String]
        var continuation: AsyncStream<PriceUpdate>.Continuation
    }

    private let gateway: GatewayAddress
    private let token: TokenSource
    private let configuration: TickwireClient.Configuration
    private let observers: ClientObservers
    private var clock: any TickwireClock { configuration.clock }

    // The connection's life.
    private var state: ConnectionState = .connecting
    private var finished = false
    private var epoch = 0
    private var attemptTask: Task<Void, Never>?
    private var awaitingToken = false
    private var timers: [TimerKind: Task<Void, Never>] = [:]
    private var backoff: Backoff
    private var waitingAfterPolicyClose = false
    private var refusals = 0
    private var tokenReason = TokenReason.connect
    /// The last `error` frame without a request id: why the server is about to close (a token error).
    private var lastConnectionError: TickwireError?

    // The current connection.
    private var connection: (any WebSocketConnection)?
    private var connectedAt: Duration?
    private var lastFrameAt: Duration = .zero
    private var userID: String?
    private var tokenExpiresAt: Duration?
    private var pendingAuth: RequestID?
    private var framesSinceLivenessCheck = 0
    private var serverSymbols: Set<String> = []
    private var notificationsLive = false
    private var inFlight: Request?

    // What the app wants, kept across connections.
    private var priceStreams: [Int: PriceStream] = [:]
    private var holders: [String: Int] = [:]
    private var refusedSymbols: Set<String> = []
    private var lastPrices: [String: PriceUpdate] = [:]
    private var notificationStreams: [Int: AsyncStream<WalletEvent>.Continuation] = [:]
    private var notificationsRefused = false
    private var lastDelivered: [String: StreamID] = [:]
    private var nextRequestNumber: Int64 = 0

    init(gateway: GatewayAddress, token: TokenSource, configuration: TickwireClient.Configuration, observers: ClientObservers) {
        self.gateway = gateway
        self.token = token
        self.configuration = configuration
        self.observers = observers
        self.backoff = configuration.backoff
    }

    // MARK: - Commands

    func run(_ commands: AsyncStream<ClientCommand>) async {
        startAttempt()
        for await command in commands {
            handle(command)
        }
    }

    private func handle(_ command: ClientCommand) {
        switch command {
        case .addPrices(let id, let symbols, let continuation):
            guard !finished else { return continuation.finish() }
            priceStreams[id] = PriceStream(symbols: symbols, continuation: continuation)
            for symbol in symbols {
                holders[symbol, default: 0] += 1
                // A symbol already held gets its last price at once: the server sends no snapshot for it.
                if holders[symbol]! > 1, let price = lastPrices[symbol] { continuation.yield(price) }
            }
            reconcile()
        case .removePrices(let id):
            guard let stream = priceStreams.removeValue(forKey: id) else { return }
            for symbol in stream.symbols {
                holders[symbol, default: 1] -= 1
                if holders[symbol]! <= 0 {
                    holders[symbol] = nil
                    refusedSymbols.remove(symbol)
                }
            }
            reconcile()
        case .addNotifications(let id, let continuation):
            guard !finished else { return continuation.finish() }
            notificationStreams[id] = continuation
            reconcile()
        case .removeNotifications(let id):
            notificationStreams[id] = nil
            if notificationStreams.isEmpty { notificationsRefused = false }
            reconcile()
        case .connect:
            guard !finished, case .closed = state else { return }
            refusals = 0
            backoff.reset()
            startAttempt()
        case .suspend:
            guard !finished else { return }
            if case .closed = state { return }
            endConnection(code: 1000)
            setState(.closed(.init(reason: .suspended, code: nil, error: nil)))
        case .resume, .retryNow:
            if case .resume = command, case .closed(let closed) = state, closed.reason == .suspended {
                backoff.reset()
                startAttempt()
            } else {
                checkNow()
            }
        case .close:
            guard !finished else { return }
            endConnection(code: 1000)
            setState(.closed(.init(reason: .client, code: nil, error: nil)))
            finished = true
            for stream in priceStreams.values { stream.continuation.finish() }
            for continuation in notificationStreams.values { continuation.finish() }
            priceStreams = [:]
            notificationStreams = [:]
            observers.finish()
        }
    }

    /// `resume()` or `retryNow()`: a wait ends at once (except the one after 1008), and a connection
    /// that looks up must prove it with an answer within `livenessTimeout`.
    private func checkNow() {
        switch state {
        case .reconnecting where !waitingAfterPolicyClose:
            startAttempt()
        case .connected:
            framesSinceLivenessCheck = 0
            send(ClientMessage(action: .ping, requestID: makeRequestID()))
            schedule(.liveness, at: clock.now + configuration.livenessTimeout)
        default:
            break
        }
    }

    // MARK: - Connecting

    private func startAttempt() {
        epoch += 1
        cancelTimers()
        connection = nil
        connectedAt = nil
        waitingAfterPolicyClose = false
        setState(.connecting)
        lastFrameAt = clock.now
        // The silence rule covers the whole attempt: the token, the TCP connect, the upgrade, `connected`.
        schedule(.silence, at: lastFrameAt + configuration.silenceTimeout)
        let attempt = epoch
        attemptTask = Task { await self.runAttempt(attempt) }
    }

    private func runAttempt(_ attempt: Int) async {
        var headers: [(String, String)] = []
        var endpoint = gateway.endpoint
        var firstMessage: String?
        awaitingToken = true
        let tokenText: String
        do {
            tokenText = try await currentToken(reason: tokenReason)
        } catch {
            guard attempt == epoch else { return }
            awaitingToken = false
            let failure = TickwireError.client("TOKEN_PROVIDER_FAILED", "the token provider failed: \(error)")
            observers.errors.send(failure)
            return reconnect(cause: .token, code: nil, error: failure)
        }
        guard attempt == epoch else { return }
        awaitingToken = false
        switch configuration.tokenTransport {
        case .header: headers.append(("Authorization", "Bearer \(tokenText)"))
        case .query: endpoint = gateway.endpoint(withToken: tokenText)
        case .firstMessage: firstMessage = ClientMessage(action: .auth(token: tokenText)).jsonText
        }
        let opened: any WebSocketConnection
        do {
            opened = try await configuration.transport.connect(to: endpoint, headers: headers)
        } catch {
            guard attempt == epoch else { return }
            let failure = TickwireError.client("CONNECTION_FAILED", "\(error)")
            return reconnect(cause: .network, code: 1006, error: failure)
        }
        guard attempt == epoch, !finished else { return opened.close(code: 1000) }
        connection = opened
        if let firstMessage { opened.send(firstMessage) }
        for await event in opened.events {
            guard attempt == epoch else { return }
            switch event {
            case .text(let text):
                frameArrived()
                received(text)
            case .alive:
                frameArrived()
            case .closed(let code, _):
                return connectionClosed(code: code)
            }
        }
        if attempt == epoch { connectionClosed(code: 1006) }
    }

    private func currentToken(reason: TokenReason) async throws -> String {
        switch token {
        case .fixed(let text): text
        case .provider(let provider): try await provider(reason)
        }
    }

    private func frameArrived() {
        lastFrameAt = clock.now
        framesSinceLivenessCheck += 1
    }

    // MARK: - Losing the connection

    private func connectionClosed(code: UInt16) {
        connection = nil
        switch code {
        case 1000:
            endConnection(code: nil)
            setState(.closed(.init(reason: .server, code: code, error: lastConnectionError)))
        case 4001:
            let refusal = lastConnectionError
            if case .fixed = token {
                // A fixed string cannot be renewed: retrying it cannot help.
                endConnection(code: nil)
                return setState(.closed(.init(reason: .unauthorized, code: code, error: refusal)))
            }
            refusals += 1
            if refusals >= 3 {
                endConnection(code: nil)
                return setState(.closed(.init(reason: .unauthorized, code: code, error: refusal)))
            }
            tokenReason = .refused
            reconnect(cause: .close, code: code, error: refusal)
        case 1008:
            reconnect(cause: .close, code: code, error: lastConnectionError, atLeast: configuration.policyCloseWait)
        case 1006:
            reconnect(cause: .network, code: code, error: nil)
        default:
            reconnect(cause: .close, code: code, error: lastConnectionError)
        }
    }

    /// Drops the connection (if any) and waits a backoff delay (plus `atLeast`) before the next attempt.
    private func reconnect(
        cause: ConnectionState.Reconnecting.Cause, code: UInt16?, error: TickwireError?, atLeast minimum: Duration = .zero,
        immediately: Bool = false
    ) {
        let now = clock.now
        if let connectedAt, now - connectedAt >= backoff.resetAfter { backoff.reset() }
        endConnection(code: nil)
        let delay = immediately ? .zero : minimum + backoff.nextDelay(random: configuration.random())
        waitingAfterPolicyClose = minimum > .zero
        // The deadline is fixed before the state is announced, so a test that advances a manual
        // clock on seeing the state wakes the timer even if it has not started sleeping yet.
        schedule(.reconnect, at: now + delay)
        setState(.reconnecting(.init(delay: delay, attempt: backoff.failures, cause: cause, code: code, error: error)))
    }

    /// Ends the current attempt: later frames and timers of it are ignored.
    private func endConnection(code: UInt16?) {
        epoch += 1
        cancelTimers()
        attemptTask?.cancel()
        attemptTask = nil
        connection?.close(code: code ?? 1000)
        connection = nil
        connectedAt = nil
        userID = nil
        inFlight = nil
        pendingAuth = nil
        serverSymbols = []
        notificationsLive = false
        lastConnectionError = nil
    }

    // MARK: - Timers

    private func schedule(_ kind: TimerKind, at deadline: Duration) {
        timers[kind]?.cancel()
        let attempt = epoch
        let clock = clock
        timers[kind] = Task {
            do { try await clock.sleep(until: deadline) } catch { return }
            self.timerFired(kind, attempt: attempt)
        }
    }

    private func cancelTimers() {
        for timer in timers.values { timer.cancel() }
        timers = [:]
    }

    private func timerFired(_ kind: TimerKind, attempt: Int) {
        guard attempt == epoch, !finished else { return }
        timers[kind] = nil
        let now = clock.now
        switch kind {
        case .reconnect:
            if case .reconnecting = state { startAttempt() }
        case .ping:
            send(ClientMessage(action: .ping))
            schedule(.ping, at: now + pingInterval)
        case .silence:
            let deadline = lastFrameAt + configuration.silenceTimeout
            if now < deadline { return schedule(.silence, at: deadline) }
            // Dead: close from this side, never waiting for a close handshake that will not come.
            if case .connecting = state, awaitingToken {
                let failure = TickwireError.client("TOKEN_PROVIDER_FAILED", "the token provider did not answer")
                observers.errors.send(failure)
                return reconnect(cause: .token, code: nil, error: failure)
            }
            reconnect(cause: .heartbeat, code: nil, error: nil)
        case .liveness:
            if framesSinceLivenessCheck == 0 { reconnect(cause: .heartbeat, code: nil, error: nil, immediately: true) }
        case .refresh:
            refreshToken(attempt: attempt)
        case .retry:
            reconcile()
        }
    }

    private var pingInterval: Duration = .seconds(30)

    // MARK: - Frames

    private func received(_ text: String) {
        let frame: ServerMessage.Frame
        do {
            guard let decoded = try ServerMessage.decode(Array(text.utf8)) else { return }
            frame = decoded
        } catch {
            observers.errors.send(.client("INVALID_FRAME", "the server sent a frame this client cannot read: \(error)"))
            return
        }
        switch frame.message {
        case .connected(let connected):
            guard case .connecting = state else { return }
            let now = clock.now
            userID = connected.userID
            refusals = 0
            tokenReason = .connect
            connectedAt = now
            lastConnectionError = nil
            pingInterval = connected.heartbeatIntervalMilliseconds > 0
                ? .milliseconds(connected.heartbeatIntervalMilliseconds) : configuration.pingInterval
            schedule(.ping, at: now + pingInterval)
            tokenLifetime(expiresAt: connected.expiresAt, serverTime: frame.sentAt)
            setState(.connected(userID: connected.userID, connectionID: connected.connectionID))
            reconcile()
        case .priceUpdate(let price):
            deliver(price)
        case .priceBatch(let prices):
            for price in prices { deliver(price) }
        case .notification(let envelope):
            deliver(envelope)
        case .pong:
            break
        case .subscribedPrices(let symbols, let requestID), .unsubscribedPrices(let symbols, let requestID):
            serverSymbols = Set(symbols)
            if let request = inFlight, request.id == requestID, case .subscribePrices(let asked) = request.kind {
                // Asked for and not in the connection's set: refused (its UNKNOWN_SYMBOL error follows).
                refusedSymbols.formUnion(Set(asked).subtracting(serverSymbols))
            }
            answered(requestID)
        case .subscribedNotifications(let user, let recovered, let requestID):
            notificationsLive = true
            if let request = inFlight, request.id == requestID, case .subscribeNotifications(_, let since?) = request.kind,
                !recovered
            {
                observers.gaps.send(NotificationGap(userID: user, since: since.description))
            }
            answered(requestID)
        case .unsubscribedNotifications(_, let requestID):
            notificationsLive = false
            answered(requestID)
        case .authenticated(_, let expiresAt, let requestID):
            if requestID == pendingAuth { pendingAuth = nil }
            tokenLifetime(expiresAt: expiresAt, serverTime: frame.sentAt)
        case .error(let violation, let requestID):
            let error = TickwireError(violation, requestID: requestID)
            // Handled first, so that whoever sees the error sees what the client made of it.
            serverRefused(error, violation: violation)
            observers.errors.send(error)
        }
    }

    private func answered(_ requestID: RequestID?) {
        if let request = inFlight, request.id == requestID { inFlight = nil }
        reconcile()
    }

    private func serverRefused(_ error: TickwireError, violation: ProtocolViolation) {
        guard let requestID = error.requestID else {
            lastConnectionError = error
            return
        }
        if requestID == pendingAuth {
            pendingAuth = nil
            return refreshFailed()
        }
        if violation.code == .unknownSymbol {
            // May follow the `subscribed` of the same frame: the listed symbols were taken.
            refusedSymbols.formUnion((violation.details["symbols"]?.arrayValue ?? []).compactMap(\.stringValue))
        }
        guard let request = inFlight, request.id == requestID else { return }
        inFlight = nil
        switch (violation.code, request.kind) {
        case (.rateLimited, _):
            // Not final: the same change goes again once the suspension is over.
            let wait = violation.details["retry_after_ms"]?.integerValue ?? 1000
            return schedule(.retry, at: clock.now + .milliseconds(max(wait, 1)))
        case (.unknownSymbol, _):
            break
        case (_, .subscribePrices(let symbols)):
            // SUBSCRIPTION_LIMIT and the like: not asked for again until the app lets go of them.
            refusedSymbols.formUnion(symbols)
        case (.invalidMessage, .subscribeNotifications(let user, let since?)):
            // An id from another deployment: forget it, tell the app, subscribe from now.
            configuration.notificationIDStore.setLastID(nil, forKey: storeKey(user))
            lastDelivered[user] = nil
            observers.gaps.send(NotificationGap(userID: user, since: since.description))
        case (_, .subscribeNotifications):
            notificationsRefused = true
        default:
            break
        }
        reconcile()
    }

    // MARK: - Subscriptions

    /// Compares what the app wants with what the server confirmed and sends the next change, one at a time.
    private func reconcile() {
        guard case .connected = state, inFlight == nil, timers[.retry] == nil, let userID else { return }
        let wanted = Set(holders.keys)
        let missing = wanted.subtracting(serverSymbols).subtracting(refusedSymbols).sorted()
        if !missing.isEmpty {
            let batch = Array(missing.prefix(ClientMessage.maximumSymbolsPerMessage))
            return request(.subscribePrices(batch))
        }
        let unwanted = serverSymbols.subtracting(wanted).sorted()
        if !unwanted.isEmpty {
            return request(.unsubscribePrices(Array(unwanted.prefix(ClientMessage.maximumSymbolsPerMessage))))
        }
        if !notificationStreams.isEmpty, !notificationsLive, !notificationsRefused {
            let since =
                lastDelivered[userID] ?? configuration.notificationIDStore.lastID(forKey: storeKey(userID)).flatMap { StreamID($0) }
            return request(.subscribeNotifications(userID: userID, since: since))
        }
        if notificationStreams.isEmpty, notificationsLive {
            return request(.unsubscribeNotifications(userID: userID))
        }
    }

    private func request(_ kind: Request.Kind) {
        let id = makeRequestID()
        inFlight = Request(id: id, kind: kind)
        let action: ClientAction =
            switch kind {
            case .subscribePrices(let symbols): .subscribePrices(symbols: symbols)
            case .unsubscribePrices(let symbols): .unsubscribePrices(symbols: symbols)
            case .subscribeNotifications(let user, let since): .subscribeNotifications(userID: user, since: since)
            case .unsubscribeNotifications(let user): .unsubscribeNotifications(userID: user)
            }
        send(ClientMessage(action: action, requestID: id))
    }

    private func makeRequestID() -> RequestID {
        nextRequestNumber += 1
        return .integer(nextRequestNumber)
    }

    private func send(_ message: ClientMessage) {
        connection?.send(message.jsonText)
    }

    private func deliver(_ price: PriceUpdate) {
        lastPrices[price.symbol] = price
        for stream in priceStreams.values where stream.symbols.contains(price.symbol) {
            stream.continuation.yield(price)
        }
    }

    private func deliver(_ envelope: NotificationEnvelope) {
        guard let userID else { return }
        if let last = lastDelivered[userID], envelope.id <= last { return }
        lastDelivered[userID] = envelope.id
        do {
            let event = try WalletEvent(envelope)
            for continuation in notificationStreams.values { continuation.yield(event) }
        } catch {
            observers.errors.send(.client("INVALID_FRAME", "a \(envelope.kind.rawValue) event does not match its schema: \(error)"))
        }
        // Recorded after delivery: a crash in between means the event comes again, never that it is lost.
        configuration.notificationIDStore.setLastID(envelope.id.description, forKey: storeKey(userID))
    }

    private func storeKey(_ user: String) -> String {
        "tickwire:last-id:\(gateway.storeKey):\(user)"
    }

    // MARK: - Token refresh

    /// Schedules the refresh a minute before the expiry (halfway for tokens shorter than two
    /// minutes), from the server's own clock so that a client clock that is off does not matter.
    private func tokenLifetime(expiresAt: Timestamp?, serverTime: Timestamp) {
        guard case .provider = token, let expiresAt else { return }
        let lifetime = Duration.milliseconds(expiresAt.millisecondsSinceEpoch - serverTime.millisecondsSinceEpoch)
        let now = clock.now
        tokenExpiresAt = now + lifetime
        let lead = lifetime >= .seconds(120) ? lifetime - .seconds(60) : lifetime / 2
        schedule(.refresh, at: now + max(lead, .zero))
    }

    private func refreshToken(attempt: Int) {
        guard case .provider(let provider) = token else { return }
        Task {
            do {
                let fresh = try await provider(.refresh)
                self.sendAuth(fresh, attempt: attempt)
            } catch {
                self.refreshProviderFailed(error, attempt: attempt)
            }
        }
    }

    private func sendAuth(_ token: String, attempt: Int) {
        guard attempt == epoch else { return }
        let id = makeRequestID()
        pendingAuth = id
        send(ClientMessage(action: .auth(token: token), requestID: id))
    }

    private func refreshProviderFailed(_ error: any Error, attempt: Int) {
        guard attempt == epoch else { return }
        observers.errors.send(.client("TOKEN_PROVIDER_FAILED", "the token provider failed: \(error)"))
        refreshFailed()
    }

    /// The current token stays valid until it expires: try again halfway to the expiry.
    private func refreshFailed() {
        guard let tokenExpiresAt else { return }
        let remaining = tokenExpiresAt - clock.now
        if remaining > .seconds(2) { schedule(.refresh, at: clock.now + remaining / 2) }
    }

    // MARK: - State

    private func setState(_ new: ConnectionState) {
        // The client starts out `connecting`: its first attempt announces nothing new.
        guard new != state || observers.states.current != new else { return }
        state = new
        observers.states.send(new)
    }
}

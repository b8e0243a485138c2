import NIOCore
import Testing
import TickwireProtocol

@testable import TickwireCore

/// The session as a value: every rule checked without a socket.
@Suite struct SessionRules {
    static let secret = "unit-secret"
    let signer = HS256TokenSigner(secret: SessionRules.secret)
    let settings: SessionSettings

    init() {
        var keys = JWTKeySet()
        keys.add(.hmac(Array(Self.secret.utf8)))
        var limits = SessionLimits()
        limits.maximumSymbolsPerConnection = 3
        limits.subscriptionChangesPerWindow = 4
        limits.pingsPerWindow = 2
        limits.framesPerWindow = 10
        limits.windowNanoseconds = 1_000
        limits.suspensionNanoseconds = 5_000
        settings = SessionSettings(
            symbols: SymbolTable(["BTC", "ETH", "SOL", "XLM"]), verifier: JWTVerifier(keys: keys, leewaySeconds: 0),
            limits: limits, heartbeatTimeoutNanoseconds: 100)
    }

    func session(user: String = "alice", expiresIn seconds: Int64 = 3600) -> Session {
        Session(settings: settings, token: VerifiedToken(subject: user, expiresAt: .now().adding(milliseconds: seconds * 1000)), now: 0)
    }

    func messages(_ actions: [Session.Action]) -> [ServerMessage] {
        actions.compactMap { if case .send(let message) = $0 { message } else { nil } }
    }

    func handle(_ session: inout Session, _ action: ClientAction, now: UInt64 = 0) -> [Session.Action] {
        session.handle(ClientMessage(action: action), now: now, wallClock: .now())
    }

    @Test func subscribeAddsKnownSymbolsAndNamesUnknownOnes() {
        var session = session()
        let actions = handle(&session, .subscribePrices(symbols: ["ETH", "NOPE", "BTC"]))
        guard case .addPriceSubscriptions(let added) = actions.first else { Issue.record("\(actions)"); return }
        #expect(added == [1, 0])
        #expect(messages(actions) == [
            .subscribedPrices(symbols: ["BTC", "ETH"], requestID: nil),
            .error(ProtocolViolation(.unknownSymbol, "unknown symbols: NOPE", details: ["symbols": ["NOPE"]]), requestID: nil),
        ])
        #expect(actions.contains { if case .sendSnapshot([1, 0]) = $0 { true } else { false } })
    }

    @Test func resubscribingAddsNothingAndSendsNoSnapshot() {
        var session = session()
        _ = handle(&session, .subscribePrices(symbols: ["BTC"]))
        let again = handle(&session, .subscribePrices(symbols: ["BTC"]))
        #expect(messages(again) == [.subscribedPrices(symbols: ["BTC"], requestID: nil)])
        #expect(!again.contains { if case .sendSnapshot = $0 { true } else { false } })
    }

    @Test func theSymbolLimitRefusesTheWholeRequest() {
        var session = session()
        _ = handle(&session, .subscribePrices(symbols: ["BTC", "ETH"]))
        let refused = messages(handle(&session, .subscribePrices(symbols: ["SOL", "XLM"])))
        guard case .error(let violation, _) = refused.first else { Issue.record("\(refused)"); return }
        #expect(violation.code == .subscriptionLimit)
        #expect(session.subscribedSymbols == ["BTC", "ETH"])
    }

    @Test func unsubscribingEverythingWithAnEmptyList() {
        var session = session()
        _ = handle(&session, .subscribePrices(symbols: ["BTC", "ETH"]))
        let actions = handle(&session, .unsubscribePrices(symbols: []))
        #expect(messages(actions) == [.unsubscribedPrices(symbols: [], requestID: nil)])
        #expect(session.symbols.isEmpty)
    }

    @Test func subscriptionChangesOverTheLimitAreSuspended() {
        var session = session()
        for _ in 0..<4 { _ = handle(&session, .subscribePrices(symbols: ["BTC"]), now: 10) }
        let refused = messages(handle(&session, .subscribePrices(symbols: ["ETH"]), now: 20))
        guard case .error(let violation, _) = refused.first else { Issue.record("\(refused)"); return }
        #expect(violation.code == .rateLimited && violation.details["limit"] == "subscriptions")
        // Still suspended after the window passed, until the suspension ends.
        guard case .error = messages(handle(&session, .subscribePrices(symbols: ["ETH"]), now: 3_000)).first else {
            Issue.record("expected a refusal during the suspension"); return
        }
        #expect(messages(handle(&session, .subscribePrices(symbols: ["ETH"]), now: 5_100)).first
            == .subscribedPrices(symbols: ["BTC", "ETH"], requestID: nil))
    }

    @Test func tooManyFramesClose1008() {
        var session = session()
        for index in 0..<10 { #expect(session.frameReceived(now: UInt64(index)) == nil) }
        guard case .close(let code, _)? = session.frameReceived(now: 10) else { Issue.record("expected close"); return }
        #expect(code == .policyViolation)
    }

    @Test func silenceClosesWith4008AndAnyFrameResetsIt() {
        var session = session()
        #expect(session.sweep(now: 50, wallClock: .now()).isEmpty)
        _ = session.frameReceived(now: 60)
        #expect(session.sweep(now: 150, wallClock: .now()).isEmpty)
        guard case .close(let code, _) = session.sweep(now: 160, wallClock: .now()).first else {
            Issue.record("expected close"); return
        }
        #expect(code == .heartbeatTimeout)
    }

    @Test func expiryClosesWith4001AfterTokenExpired() {
        let session = session(expiresIn: 1)
        let actions = session.sweep(now: 0, wallClock: .now().adding(milliseconds: 2000))
        #expect(messages(actions).first == .error(ProtocolViolation(.tokenExpired, "the token has expired"), requestID: nil))
        guard case .close(let code, _) = actions.last else { Issue.record("expected close"); return }
        #expect(code == .authenticationFailed)
    }

    @Test func refreshingMovesTheExpiryAndRequiresTheSameSubject() {
        var session = session(expiresIn: 1)
        let fresh = signer.token(subject: "alice", lifetimeSeconds: 600)
        guard case .authenticated(_, let expiresAt, _) = messages(handle(&session, .auth(token: fresh))).first else {
            Issue.record("expected authenticated"); return
        }
        #expect(expiresAt == session.expiresAt)
        #expect(session.sweep(now: 0, wallClock: .now().adding(milliseconds: 5000)).isEmpty)
        let other = signer.token(subject: "mallory", lifetimeSeconds: 600)
        guard case .error(let violation, _) = messages(handle(&session, .auth(token: other))).first else {
            Issue.record("expected error"); return
        }
        #expect(violation.code == .forbidden)
    }

    @Test func notificationsOfAnotherUserAreForbidden() {
        var session = session()
        guard case .error(let violation, _) = messages(handle(&session, .subscribeNotifications(userID: "bob", since: nil))).first
        else { Issue.record("expected error"); return }
        #expect(violation.code == .forbidden)
        #expect(!session.isSubscribedToNotifications)
    }

    func id(_ milliseconds: UInt64) -> StreamID { StreamID(milliseconds: milliseconds, sequence: 0) }
    func frame(_ n: UInt8) -> ByteBuffer { ByteBuffer(bytes: [n]) }
    func stored(_ milliseconds: [UInt64]) -> [NotificationEnvelope] {
        milliseconds.map { NotificationEnvelope(id: id($0), kind: .notification, data: [:], timestamp: .now()) }
    }

    /// What the catch-up writes, as ids: stored events by id, held frames by their one byte.
    func drainCatchUp(_ session: inout Session) -> [UInt64] {
        var ids: [UInt64] = []
        while let item = session.nextCatchUpItem() {
            switch item {
            case .stored(let envelope): ids.append(envelope.id.milliseconds)
            case .live(let buffer): ids.append(UInt64(buffer.getInteger(at: 0, as: UInt8.self)!))
            }
        }
        return ids
    }

    func isWrite(_ outcome: Session.LiveNotification) -> Bool {
        if case .write = outcome { return true }
        return false
    }

    func isNone(_ outcome: Session.LiveNotification) -> Bool {
        if case .none = outcome { return true }
        return false
    }

    /// Live events that arrive during a replay are held, then delivered after the replayed
    /// ones, without duplicates.
    @Test func replayThenLiveWithoutGapOrDuplicate() {
        var session = session()
        let since = id(10)
        let actions = handle(&session, .subscribeNotifications(userID: "alice", since: since))
        #expect(actions.contains { if case .startReplay("alice", since) = $0 { true } else { false } })
        // Live 12 and 13 arrive while the store is being read; 12 is also in the replay.
        #expect(isNone(session.liveNotification(id: id(12), frame: frame(12))))
        #expect(isNone(session.liveNotification(id: id(13), frame: frame(13))))
        let finished = session.replayFinished(since: since, events: stored([11, 12]), recovered: true)
        #expect(messages(finished) == [.subscribedNotifications(userID: "alice", recovered: true, requestID: nil)])
        #expect(finished.contains { if case .streamCatchUp = $0 { true } else { false } })
        // 14 arrives while the catch-up is being written: it waits its turn.
        #expect(isNone(session.liveNotification(id: id(14), frame: frame(14))))
        #expect(session.isCatchingUp)
        #expect(drainCatchUp(&session) == [11, 12, 13, 14])
        #expect(!session.isCatchingUp)
        // Later duplicates are dropped, new ids pass.
        #expect(isNone(session.liveNotification(id: id(14), frame: frame(14))))
        #expect(isWrite(session.liveNotification(id: id(15), frame: frame(15))))
    }

    /// Once `subscribed` is out, an overflow can no longer be reported as `recovered: false`:
    /// the connection must be cut so that the client catches up again, never lose one silently.
    @Test func tooManyLiveEventsDuringACatchUpCutTheConnection() {
        var session = session()
        let since = id(10)
        _ = handle(&session, .subscribeNotifications(userID: "alice", since: since))
        _ = session.replayFinished(since: since, events: stored([11]), recovered: true)
        let limit = settings.limits.maximumBufferedDuringReplay
        for n in 0..<limit { #expect(isNone(session.liveNotification(id: id(100 + UInt64(n)), frame: frame(1)))) }
        guard case .tooFarBehind = session.liveNotification(id: id(100 + UInt64(limit)), frame: frame(1)) else {
            Issue.record("expected tooFarBehind")
            return
        }
    }

    @Test func aFailedReplayReportsNotRecoveredAndGoesLive() {
        var session = session()
        let since = id(10)
        _ = handle(&session, .subscribeNotifications(userID: "alice", since: since))
        let finished = session.replayFinished(since: since, events: nil, recovered: true)
        #expect(messages(finished) == [.subscribedNotifications(userID: "alice", recovered: false, requestID: nil)])
        #expect(drainCatchUp(&session).isEmpty)
        #expect(isWrite(session.liveNotification(id: id(11), frame: ByteBuffer())))
    }
}

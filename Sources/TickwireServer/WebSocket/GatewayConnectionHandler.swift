import Logging
import NIOCore
import TickwireCore
import TickwireProtocol
import TickwireWebSocket

/// One client on `/ws`. It authenticates (a token from the request, or a first `auth`
/// message), owns the connection's `Session`, performs the session's actions, and is
/// the `HubConnection` the fan-out writes to.
final class GatewayConnectionHandler: ChannelInboundHandler, WebSocketEndpoint, HubConnection {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Timeouts {
        /// How long to wait for a client's close frame after a normal close (drain, 1001).
        var closeHandshake = TimeAmount.seconds(10)
        /// The same for a client we refuse or cut (bad token, full, too slow, silent, abusive):
        /// it must not keep its slot, nor the bytes queued for it, for long.
        var closeGrace = TimeAmount.seconds(1)
        /// How long a connection without a token may take to send its `auth` message.
        var authentication = TimeAmount.seconds(5)
    }

    private let gateway: Gateway
    private var token: String?
    private let logger: Logger
    private let timeouts: Timeouts
    var webSocket: WebSocketConnectionState
    private var session: Session?
    private var loopHub: LoopHub?
    private var context: ChannelHandlerContext?
    /// The handshake was counted (the channel was still active when the handler arrived).
    private var isCounted = false
    /// The socket came in past `--max-connections`: it is told so (1013) and nothing more.
    private let isOverCapacity: Bool
    /// Set while a connection without a token waits for its `auth` message.
    private var authenticationDeadline: Scheduled<Void>?
    /// Bytes of catch-up written per step (a quarter of the pending-bytes bound).
    private let catchUpChunkBytes: Int
    /// A catch-up chunk is on its way to the socket; the next one follows when it gets there.
    private var catchUpChunkInFlight = false
    /// Mirrors the channel's writability (NIO reports every change), so a broadcast write does not
    /// read the channel's atomic for each subscriber.
    private var isWritable = true
    var flushPending = false

    init(
        gateway: Gateway, token: String?, isOverCapacity: Bool = false, maximumFrameSize: Int, maximumPendingBytes: Int,
        timeouts: Timeouts, logger: Logger
    ) {
        self.isOverCapacity = isOverCapacity
        self.catchUpChunkBytes = max(1024, maximumPendingBytes / 4)
        self.gateway = gateway
        self.token = token
        self.logger = logger
        self.timeouts = timeouts
        self.webSocket = WebSocketConnectionState(maximumFrameSize: maximumFrameSize, maximumMessageSize: maximumFrameSize)
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // A client that left during the upgrade: this handler will see no channelInactive, so it takes nothing.
        guard context.channel.isActive else { return }
        isCounted = true
        gateway.webSocketOpened()
        guard !isOverCapacity else {
            gateway.metrics.refused(.full)
            initiateClose(code: CloseCode.tryAgainLater.rawValue, reason: "server full, try again later", context: context)
            return
        }
        if let token {
            self.token = nil
            authenticated(gateway.settings.verifier.verify(token, now: .now()), context: context)
        } else {
            authenticationDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeouts.authentication) {
                self.authenticationDeadline = nil
                self.authenticated(.failure(.missing), context: context)
            }
        }
    }

    /// Starts the session for a verified token, or refuses the connection.
    private func authenticated(_ verification: Result<VerifiedToken, TokenRejection>, context: ChannelHandlerContext) {
        switch verification {
        case .failure(let rejection):
            gateway.metrics.refused(.token)
            perform(Session.refused(rejection), context: context)
        case .success(let verified):
            guard gateway.sessionStarting(userID: verified.subject) else {
                gateway.metrics.refused(.userLimit)
                let maximum = gateway.maximumConnectionsPerUser
                send(.error(ProtocolViolation(
                    .connectionLimit, "user \(verified.subject) already has \(maximum) connections",
                    details: ["max": .number(String(maximum))]), requestID: nil), context: context)
                initiateClose(code: CloseCode.policyViolation.rawValue, reason: "too many connections for this user", context: context)
                return
            }
            let session = Session(settings: gateway.settings, token: verified, now: NIODeadline.now().uptimeNanoseconds)
            self.session = session
            let loopHub = gateway.hub.loopHub(for: context.eventLoop)
            self.loopHub = loopHub
            loopHub.register(self)
            send(session.connectedMessage(connectionID: ConnectionID.random()), context: context)
            flushIfWritten(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        webSocket.closeTimeout?.cancel()
        authenticationDeadline?.cancel()
        authenticationDeadline = nil
        if isCounted, webSocket.closeCode == nil {
            webSocket.closeCode = CloseCode.abnormalClosure.rawValue
            closing(code: CloseCode.abnormalClosure.rawValue)
        }
        webSocket.phase = .closed
        if let session {
            loopHub?.unregister(
                self, subscribedTo: session.symbols, userID: session.isSubscribedToNotifications ? session.userID : nil)
            gateway.sessionEnded(userID: session.userID)
        }
        if isCounted {
            isCounted = false
            gateway.webSocketClosed()
        }
        session = nil
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func closeHandshakeTimeout(for code: UInt16) -> TimeAmount {
        code == CloseCode.goingAway.rawValue ? timeouts.closeHandshake : timeouts.closeGrace
    }

    func closing(code: UInt16) {
        gateway.metrics.disconnected(code: code)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data), context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfWritten(context: context)
    }

    func frameArrived(context: ChannelHandlerContext) {
        guard webSocket.phase == .open, let action = session?.frameReceived(now: NIODeadline.now().uptimeNanoseconds)
        else { return }
        perform([action], context: context)
    }

    func messageArrived(_ event: WebSocketEvent, context: ChannelHandlerContext) {
        guard session != nil else {
            firstMessageArrived(event, context: context)
            return
        }
        let actions: [Session.Action]
        switch event {
        case .text(let payload):
            let reply = payload.withUnsafeReadableBytes { bytes in
                session!.textReceived(bytes, now: NIODeadline.now().uptimeNanoseconds, wallClock: .now())
            }
            actions = reply.actions
            gateway.metrics.received(action: reply.actionName)
        case .binary:
            actions = session!.binaryReceived()
            gateway.metrics.received(action: "binary")
        default:
            return
        }
        perform(actions, context: context)
    }

    func violationOccurred(_ violation: WebSocketViolation, context: ChannelHandlerContext) {
        if violation.closeCode == CloseCode.messageTooBig.rawValue, webSocket.phase == .open {
            send(.error(ProtocolViolation(.messageTooLarge, violation.reason, details: [
                "max_bytes": .number(String(webSocket.parser.maximumFrameSize)),
            ]), requestID: nil), context: context)
        }
    }

    /// A connection without a token: its first message must authenticate it, and nothing else may come first.
    private func firstMessageArrived(_ event: WebSocketEvent, context: ChannelHandlerContext) {
        guard let deadline = authenticationDeadline else { return }  // refused already
        deadline.cancel()
        authenticationDeadline = nil
        var verification = Result<VerifiedToken, TokenRejection>.failure(.missing)
        if case .text(let payload) = event {
            verification = payload.withUnsafeReadableBytes { bytes in
                Session.authenticate(firstMessage: bytes, verifier: gateway.settings.verifier, now: .now())
            }
        }
        gateway.metrics.received(action: verification.isSuccess ? "auth" : "invalid")
        authenticated(verification, context: context)
    }

    // MARK: Performing session actions

    private func perform(_ actions: [Session.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .send(let message):
                send(message, context: context)
            case .addPriceSubscriptions(let indices):
                loopHub?.addPriceSubscriptions(self, indices)
            case .removePriceSubscriptions(let indices):
                loopHub?.removePriceSubscriptions(self, indices)
            case .sendSnapshot(let indices):
                if let prices = loopHub?.snapshot(indices), !prices.isEmpty {
                    send(.priceBatch(prices), context: context)
                }
            case .addNotificationSubscription(let userID):
                loopHub?.addUser(self, userID: userID)
            case .removeNotificationSubscription(let userID):
                loopHub?.removeUser(self, userID: userID)
            case .startReplay(let userID, let since):
                startReplay(userID: userID, since: since, context: context)
            case .streamCatchUp:
                if !catchUpChunkInFlight { streamCatchUp(context: context) }
            case .close(let code, let reason):
                initiateClose(code: code.rawValue, reason: reason, context: context)
            }
        }
    }

    private func send(_ message: ServerMessage, context: ChannelHandlerContext) {
        guard webSocket.phase == .open else { return }
        gateway.metrics.sent(message)
        write(Hub.encodeFrame(message), context: context)
    }

    private func write(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        guard webSocket.phase == .open else { return }
        context.write(wrapOutboundOut(frame), promise: nil)
        webSocket.needsFlush = true
    }

    private func flushIfWritten(context: ChannelHandlerContext) {
        if webSocket.needsFlush {
            webSocket.needsFlush = false
            context.flush()
        }
    }

    private func startReplay(userID: String, since: StreamID, context: ChannelHandlerContext) {
        let broker = gateway.broker
        let logger = self.logger
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        Task {
            var events: [NotificationEnvelope]? = nil
            var recovered = false
            do {
                let replay = try await broker.replay(userID: userID, after: since)
                events = replay.events
                recovered = replay.recovered
            } catch {
                logger.warning("notification replay failed", metadata: ["error": "\(error)"])
            }
            eventLoop.execute { [events, recovered] in
                handler.value.replayFinished(since: since, events: events, recovered: recovered)
            }
        }
    }

    func replayFinished(since: StreamID, events: [NotificationEnvelope]?, recovered: Bool) {
        guard let context, session != nil else { return }
        let actions = session!.replayFinished(since: since, events: events, recovered: recovered)
        perform(actions, context: context)
        flushIfWritten(context: context)
    }

    /// Writes the next chunk of the catch-up (about a quarter of the pending-bytes bound), and the
    /// chunk after it once this one's last frame has reached the socket: a replay of any size
    /// reaches a client that reads, and never fills the buffer that cuts slow clients with 4009.
    private func streamCatchUp(context: ChannelHandlerContext) {
        guard webSocket.phase == .open else { return }
        var frames: [ByteBuffer] = []
        var bytes = 0
        while bytes < catchUpChunkBytes, let item = session?.nextCatchUpItem() {
            let frame: ByteBuffer
            switch item {
            case .stored(let event):
                gateway.metrics.sent(.notification(event))
                frame = Hub.encodeFrame(.notification(event))
            case .live(let shared):
                gateway.metrics.countBroadcastFrames(prices: 0, notifications: 1)
                frame = shared
            }
            bytes += frame.readableBytes
            frames.append(frame)
        }
        guard let last = frames.popLast() else { return }
        for frame in frames { context.write(wrapOutboundOut(frame), promise: nil) }
        guard session?.isCatchingUp == true else {
            context.writeAndFlush(wrapOutboundOut(last), promise: nil)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        catchUpChunkInFlight = true
        context.writeAndFlush(wrapOutboundOut(last), promise: written)
        written.futureResult.assumeIsolated().whenComplete { result in
            self.catchUpChunkInFlight = false
            if case .success = result { self.streamCatchUp(context: context) }
        }
    }

    // MARK: HubConnection

    func enqueueShared(_ frame: ByteBuffer, flush: Bool) -> Bool {
        guard webSocket.phase == .open, let context else { return false }
        guard isWritable else {
            tooSlow(context: context)
            return false
        }
        if flush {
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        } else {
            context.write(wrapOutboundOut(frame), promise: nil)
        }
        return true
    }

    func enqueueNotification(id: StreamID, frame: ByteBuffer, flush: Bool) -> Bool {
        guard webSocket.phase == .open, let context, session != nil else { return false }
        switch session!.liveNotification(id: id, frame: frame) {
        case .write(let accepted):
            return enqueueShared(accepted, flush: flush)
        case .none:
            return false
        case .tooFarBehind:
            logger.debug("closing a client too far behind its catch-up", metadata: ["user": "\(session?.userID ?? "-")"])
            gateway.metrics.slowConsumerClosing()
            initiateClose(code: CloseCode.tooSlow.rawValue, reason: "too slow: too far behind the catch-up", context: context)
            return false
        }
    }

    func flush() {
        webSocket.needsFlush = false
        context?.flush()
    }

    func sweep(now: UInt64, wallClock: Timestamp) {
        guard webSocket.phase == .open, let context, let session else { return }
        let actions = session.sweep(now: now, wallClock: wallClock)
        guard !actions.isEmpty else { return }
        perform(actions, context: context)
        flushIfWritten(context: context)
    }

    func goAway() {
        guard let context else { return }
        initiateClose(code: CloseCode.goingAway.rawValue, reason: "server going away", context: context)
    }

    func fellBehind() {
        guard let context, webSocket.phase == .open else { return }
        gateway.metrics.slowConsumerClosing()
        initiateClose(code: CloseCode.tooSlow.rawValue, reason: "too slow: the gateway fell behind, resubscribe with since", context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        if !isWritable, session != nil { tooSlow(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// More than the pending-bytes bound is queued: the client does not read fast enough.
    private func tooSlow(context: ChannelHandlerContext) {
        guard webSocket.phase == .open else { return }
        logger.debug("closing a slow client", metadata: ["user": "\(session?.userID ?? "-")"])
        gateway.metrics.slowConsumerClosing()
        initiateClose(code: CloseCode.tooSlow.rawValue, reason: "too slow: outbound buffer full", context: context)
    }
}

/// Connection ids are random UUIDs (version 4), in their canonical text form.
enum ConnectionID {
    static func random() -> String {
        // Two draws of the system generator (each one getrandom call), not sixteen: this runs on every connect.
        var generator = SystemRandomNumberGenerator()
        return format(high: generator.next(), low: generator.next())
    }

    static func format(high: UInt64, low: UInt64) -> String {
        var bytes = withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { Array($0) }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let digits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 36) { text in
            var count = 0
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    text[count] = UInt8(ascii: "-")
                    count += 1
                }
                text[count] = digits[Int(byte >> 4)]
                text[count + 1] = digits[Int(byte & 0x0F)]
                count += 2
            }
            return count
        }
    }
}

extension Result {
    fileprivate var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}

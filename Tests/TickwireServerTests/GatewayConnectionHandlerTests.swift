import Logging
import NIOCore
import NIOEmbedded
import Testing
import TickwireCore
import TickwireProtocol
import TickwireWebSocket

@testable import TickwireServer

/// The `/ws` handler's own rules, on an `EmbeddedChannel`: what it writes and flushes for
/// each inbound event, and when it gives up on a client, with time advanced by hand.
@Suite struct GatewayConnectionRules {
    static let secret = "embedded-test-secret-0123456789abcdef"

    /// A gateway whose only event loop is the embedded one, and one connection on it.
    struct Fixture {
        static let maximumPendingBytes = 256 * 1024
        let loop = EmbeddedEventLoop()
        let gateway: Gateway
        let channel: EmbeddedChannel

        init(broker: any Broker = InMemoryBroker()) {
            var keys = JWTKeySet()
            keys.add(.hmac(Array(GatewayConnectionRules.secret.utf8)))
            let settings = SessionSettings(symbols: SymbolTable(["BTC", "ETH"]), verifier: JWTVerifier(keys: keys))
            gateway = Gateway(
                settings: settings, eventLoops: [loop], dispatchLoop: loop, broker: broker, metrics: GatewayMetrics(),
                priceIntervalNanoseconds: 0, maximumConnections: 10, logger: Logger(label: "test"))
            channel = EmbeddedChannel(loop: loop)
        }

        /// Connects the channel, then adds the handler (as the upgrader does after the handshake).
        func open(token: String?, isOverCapacity: Bool = false) throws {
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            try addHandler(token: token, isOverCapacity: isOverCapacity)
        }

        func addHandler(token: String?, isOverCapacity: Bool = false) throws {
            try channel.pipeline.syncOperations.addHandler(GatewayConnectionHandler(
                gateway: gateway, token: token, isOverCapacity: isOverCapacity, maximumFrameSize: 16384, maximumPendingBytes: Fixture.maximumPendingBytes,
                timeouts: .init(), logger: Logger(label: "test")))
        }

        static func token(subject: String = "alice") -> String {
            HS256TokenSigner(secret: secret).token(subject: subject, lifetimeSeconds: 3600)
        }

        /// A masked client frame, as a browser sends it.
        func send(_ opcode: WebSocketOpcode, _ payload: [UInt8]) throws {
            try channel.writeInbound(WebSocketFrameWriter.frame(
                opcode: opcode, payload: payload, maskingKey: (1, 2, 3, 4), allocator: channel.allocator))
        }

        func send(_ text: String) throws { try send(.text, Array(text.utf8)) }

        /// Every frame written and flushed so far.
        func written() throws -> [WebSocketFrame] {
            var frames: [WebSocketFrame] = []
            let parser = WebSocketFrameParser(role: .client, maximumFrameSize: 1 << 20)
            while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
                while let frame = try parser.nextFrame(from: &buffer) { frames.append(frame) }
            }
            return frames
        }

        /// The `event` of each text frame written, and `close CODE` for a close frame.
        func writtenEvents() throws -> [String] {
            try written().map { frame in
                switch frame.opcode {
                case .text:
                    let object = try JSONParser.parse(Array(frame.payload.readableBytesView)).objectValue
                    let event = object?["event"]?.stringValue ?? "?"
                    let code = object?["data"]?.objectValue?["code"]?.stringValue
                    return code.map { "\(event) \($0)" } ?? event
                case .close:
                    var payload = frame.payload
                    return "close \(payload.readInteger(as: UInt16.self).map(String.init) ?? "-")"
                default:
                    return "\(frame.opcode)"
                }
            }
        }
    }

    @Test func aPingIsPongedInTheReadCycleThatBroughtIt() throws {
        let fixture = Fixture()
        try fixture.open(token: Fixture.token())
        #expect(try fixture.writtenEvents() == ["connected"])
        try fixture.send(.ping, Array("keepalive".utf8))
        let frames = try fixture.written()
        #expect(frames.count == 1)
        #expect(frames.first?.opcode == .pong)
        #expect(frames.first.map { Array($0.payload.readableBytesView) } == Array("keepalive".utf8))
    }

    @Test func aRefusedTokenIsCutOneSecondAfterItsCloseFrame() throws {
        let fixture = Fixture()
        try fixture.open(token: "bad.token.here")
        #expect(try fixture.writtenEvents() == ["error INVALID_TOKEN", "close 4001"])
        fixture.loop.advanceTime(by: .milliseconds(999))
        #expect(fixture.channel.isActive, "the client still has its grace to answer")
        fixture.loop.advanceTime(by: .milliseconds(1))
        #expect(!fixture.channel.isActive)
        #expect(fixture.gateway.connectionCount == 0, "the slot is free again")
    }

    @Test func aSocketPastTheLimitIsCutOneSecondAfter1013() throws {
        let fixture = Fixture()
        try fixture.open(token: Fixture.token(), isOverCapacity: true)
        #expect(try fixture.writtenEvents() == ["close 1013"])
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(!fixture.channel.isActive)
    }

    @Test func aTooSlowClientIsCutWith4009AndReleasedAfterTheGrace() throws {
        let fixture = Fixture()
        try fixture.open(token: Fixture.token())
        _ = try fixture.written()
        fixture.channel.isWritable = false
        fixture.channel.pipeline.fireChannelWritabilityChanged()
        #expect(try fixture.writtenEvents() == ["close 4009"])
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(!fixture.channel.isActive)
        #expect(fixture.gateway.connectionCount == 0)
    }

    @Test func aDrainWaitsTheFullCloseHandshake() throws {
        let fixture = Fixture()
        try fixture.open(token: Fixture.token())
        _ = try fixture.written()
        let handler = try fixture.channel.pipeline.syncOperations.handler(type: GatewayConnectionHandler.self)
        handler.goAway()
        #expect(try fixture.writtenEvents() == ["close 1001"])
        fixture.loop.advanceTime(by: .seconds(9))
        #expect(fixture.channel.isActive)
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(!fixture.channel.isActive)
    }

    /// A client that left during the upgrade: the handler sees no channelInactive, so it must take nothing.
    @Test func aHandlerAddedToAClosedChannelTakesNoSlot() throws {
        let fixture = Fixture()
        try fixture.addHandler(token: Fixture.token())
        #expect(fixture.gateway.connectionCount == 0)
        #expect(try fixture.written().isEmpty)
    }

    @Test func withoutATokenOnlyAnAuthMessageWithinFiveSecondsOpensTheSession() throws {
        let silent = Fixture()
        try silent.open(token: nil)
        silent.loop.advanceTime(by: .milliseconds(4999))
        #expect(try silent.written().isEmpty)
        silent.loop.advanceTime(by: .milliseconds(1))
        #expect(try silent.writtenEvents() == ["error MISSING_TOKEN", "close 4001"])

        let prompt = Fixture()
        try prompt.open(token: nil)
        try prompt.send(#"{"action":"auth","token":"\#(Fixture.token(subject: "bob"))"}"#)
        #expect(try prompt.writtenEvents() == ["connected"])
        prompt.loop.advanceTime(by: .seconds(10))
        #expect(prompt.channel.isActive, "the authentication deadline was cancelled")

        let impatient = Fixture()
        try impatient.open(token: nil)
        try impatient.send(#"{"action":"ping"}"#)
        #expect(try impatient.writtenEvents() == ["error MISSING_TOKEN", "close 4001"])
    }

    /// A `since` replay of 1000 stored events: one chunk (a quarter of the pending bound) goes
    /// out, and the next only once the socket took it, so a replay never fills the buffer that
    /// cuts slow clients, whatever its size.
    @Test func aCatchUpKeepsOneChunkInFlight() throws {
        let fixture = Fixture(broker: StoreThatNeverAnswers())
        let socket = SocketThatTakesItsTime()
        try fixture.channel.pipeline.syncOperations.addHandler(socket)
        try fixture.open(token: Fixture.token())
        let handler = try fixture.channel.pipeline.syncOperations.handler(type: GatewayConnectionHandler.self)
        let since = StreamID(milliseconds: 1, sequence: 0)
        try fixture.send(#"{"action":"subscribe","channel":"notifications","user_id":"alice","since":"1-0"}"#)
        #expect(try fixture.writtenEvents() == ["connected"])

        let stored = (2..<1002).map { index in
            NotificationEnvelope(
                id: StreamID(milliseconds: UInt64(index), sequence: 0), kind: .notification,
                data: ["notification_id": .string("n\(index)"), "message": .string(String(repeating: "x", count: 300))],
                timestamp: .now())
        }
        handler.replayFinished(since: since, events: stored, recovered: true)
        var received: [String] = []
        var chunks = 0
        while true {
            let frames = try fixture.written()
            if frames.isEmpty { break }
            chunks += 1
            let bytes = frames.reduce(0) { $0 + $1.payload.readableBytes }
            #expect(bytes <= Fixture.maximumPendingBytes / 4 + 1024, "chunk \(chunks) was \(bytes) bytes")
            for frame in frames {
                #expect(frame.opcode == .text)
                let object = try JSONParser.parse(Array(frame.payload.readableBytesView)).objectValue
                if let id = object?["id"]?.stringValue { received.append(id) }
            }
            socket.takeEverything()
        }
        #expect(received == stored.map(\.id.description))
        #expect(chunks >= 6, "1000 events of ~400 bytes took \(chunks) chunks")
        #expect(fixture.channel.isActive)
    }
}

/// Passes every write on at once but completes it only when the test says the peer read it.
final class SocketThatTakesItsTime: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private var pending: [EventLoopPromise<Void>] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: nil)
        if let promise { pending.append(promise) }
    }

    func takeEverything() {
        let taken = pending
        pending = []
        for promise in taken { promise.succeed() }
    }
}

/// A broker whose store is never read back: the test hands the handler the replay itself,
/// on the embedded loop's own thread.
final class StoreThatNeverAnswers: Broker {
    func start(delegate: any BrokerDelegate) async { delegate.broker(readinessChanged: true) }
    func shutdown() async {}
    var isReady: Bool { true }
    func publish(prices: [PriceUpdate]) async throws {}
    func latestPrices() async throws -> [PriceUpdate] { [] }
    func publish(notification kind: NotificationKind, data: JSONObject, userID: String) async throws -> NotificationEnvelope {
        throw CancellationError()
    }
    func replay(userID: String, after since: StreamID) async throws -> NotificationReplay {
        try await Task.sleep(for: .seconds(86_400))
        throw CancellationError()
    }
    func setInterest(_ channel: BrokerChannel, active: Bool) {}
}

import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TickwireCore
import TickwireProtocol
import TickwireWebSocket

@testable import TickwireServer

/// The upgrade to WebSocket on an `EmbeddedChannel` that carries the real HTTP handlers.
@Suite struct WebSocketUpgrades {
    /// Answers every plain HTTP request with an empty 200 at once.
    final class Answering: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "0")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    static func upgrader(_ fixture: GatewayConnectionRules.Fixture) -> WebSocketUpgrader {
        let gateway = fixture.gateway
        return WebSocketUpgrader(
            originPolicy: OriginPolicy(allowedOrigins: []), echoEnabled: false,
            makeGatewayHandler: { request, isOverCapacity in
                GatewayConnectionHandler(
                    gateway: gateway, token: request.bearerToken, isOverCapacity: isOverCapacity, maximumFrameSize: 16384,
                    maximumPendingBytes: 256 * 1024, timeouts: .init(), logger: Logger(label: "test"))
            },
            makeEchoHandler: { fatalError("no echo here") })
    }

    /// The HTTP handlers of a public connection, with `Answering` in place of the API.
    static func addHTTPHandlers(to pipeline: ChannelPipeline.SynchronousOperations, upgrader: WebSocketUpgrader) throws {
        let encoder = HTTPResponseEncoder()
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        let pipelining = HTTPServerPipelineHandler()
        let errors = HTTPServerProtocolErrorHandler()
        let answering = Answering()
        let upgrade = WebSocketUpgradeHandler(
            upgrader: upgrader, handlers: .init(parsing: [pipelining, errors, decoder], encoder: encoder, serving: [answering]),
            isOverCapacity: { _ in false })
        for handler: ChannelHandler in [encoder, decoder, pipelining, errors, upgrade, answering] {
            try pipeline.addHandler(handler)
        }
    }

    func connection(_ fixture: GatewayConnectionRules.Fixture) throws -> EmbeddedChannel {
        let channel = fixture.channel
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        try Self.addHTTPHandlers(to: channel.pipeline.syncOperations, upgrader: Self.upgrader(fixture))
        return channel
    }

    func upgradeRequest(token: String) -> String {
        Self.upgradeRequest(token: token)
    }

    static func upgradeRequest(token: String) -> String {
        "GET /ws?token=\(token) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    }

    /// Everything written: the HTTP response, and after a 101 the WebSocket frames.
    func written(_ channel: EmbeddedChannel) throws -> (http: String, frames: [WebSocketFrame]) {
        try Self.written(channel)
    }

    static func written(_ channel: EmbeddedChannel) throws -> (http: String, frames: [WebSocketFrame]) {
        channel.embeddedEventLoop.run()  // NIO defers a decoder's removal to the loop
        var all = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&chunk) }
        let text = String(buffer: all)
        guard text.hasPrefix("HTTP/1.1 101"), let range = text.range(of: "\r\n\r\n") else { return (text, []) }
        let headLength = text.utf8.distance(from: text.startIndex, to: range.upperBound)
        var rest = all.getSlice(at: all.readerIndex + headLength, length: all.readableBytes - headLength)!
        var frames: [WebSocketFrame] = []
        let parser = WebSocketFrameParser(role: .client, maximumFrameSize: 1 << 20)
        while let frame = try parser.nextFrame(from: &rest) { frames.append(frame) }
        return (String(text[..<range.upperBound]), frames)
    }

    /// A client whose pooled connection already served a request (Node's WebSocket reuses fetch's) once got 426.
    @Test func anyRequestOfAConnectionMayUpgrade() throws {
        let fixture = GatewayConnectionRules.Fixture()
        let channel = try connection(fixture)
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(try written(channel).http.hasPrefix("HTTP/1.1 200 OK"))
        try channel.writeInbound(ByteBuffer(string: upgradeRequest(token: GatewayConnectionRules.Fixture.token())))
        let (http, frames) = try written(channel)
        #expect(http.hasPrefix("HTTP/1.1 101 Switching Protocols"))
        #expect(http.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") || http.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        #expect(frames.first.map { String(buffer: $0.payload).contains(#""event":"connected""#) } == true)
        #expect((try? channel.pipeline.syncOperations.handler(type: WebSocketUpgradeHandler.self)) == nil, "it left")
        #expect((try? channel.pipeline.syncOperations.handler(type: HTTPResponseEncoder.self)) == nil)
    }

    /// Bytes a client sends right behind its upgrade request are frames, and reach the WebSocket.
    @Test func framesRightBehindTheRequestAreNotLost() throws {
        let fixture = GatewayConnectionRules.Fixture()
        let channel = try connection(fixture)
        var bytes = ByteBuffer(string: upgradeRequest(token: GatewayConnectionRules.Fixture.token()))
        var ping = WebSocketFrameWriter.frame(opcode: .ping, payload: Array("behind".utf8), maskingKey: (1, 2, 3, 4), allocator: channel.allocator)
        bytes.writeBuffer(&ping)
        try channel.writeInbound(bytes)
        let (http, frames) = try written(channel)
        #expect(http.hasPrefix("HTTP/1.1 101"))
        #expect(frames.map(\.opcode) == [.text, .pong])
        #expect(frames.last.map { String(buffer: $0.payload) } == "behind")
    }

    /// NIO's HTTP decoder parses nothing after an upgrade request, so a refusal closes the connection.
    @Test func aRefusedUpgradeIsAnsweredThenClosed() throws {
        let fixture = GatewayConnectionRules.Fixture()
        let channel = try connection(fixture)
        try channel.writeInbound(ByteBuffer(string: upgradeRequest(token: "x").replacingOccurrences(of: "/ws?", with: "/nope?")))
        let http = try written(channel).http
        #expect(http.hasPrefix("HTTP/1.1 404"))
        #expect(http.lowercased().contains("connection: close"))
        #expect(!channel.isActive)
    }
}

/// A connection's first request (`FirstRequestHandler`): a plain upgrade is served without the HTTP
/// pipeline, everything else by it, as if the fast path were not there.
@Suite struct FirstRequests {
    /// Counts what reaches the socket: the bytes of each flush, so a test sees what shares a system call.
    final class Flushes: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var pending = 0
        var flushed: [Int] = []

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            pending += unwrapOutboundIn(data).readableBytes
            context.write(data, promise: promise)
        }

        func flush(context: ChannelHandlerContext) {
            if pending > 0 { flushed.append(pending) }
            pending = 0
            context.flush()
        }
    }

    let fixture = GatewayConnectionRules.Fixture()
    let flushes = Flushes()

    init() throws {
        let upgrader = WebSocketUpgrades.upgrader(fixture)
        try fixture.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        let pipeline = fixture.channel.pipeline.syncOperations
        try pipeline.addHandler(flushes)
        try pipeline.addHandler(
            FirstRequestHandler(
                upgrader: upgrader, requestTimeout: .seconds(10), isOverCapacity: { _ in false },
                installHTTP: { try WebSocketUpgrades.addHTTPHandlers(to: $0, upgrader: upgrader) }))
    }

    var channel: EmbeddedChannel { fixture.channel }

    func has<Handler: ChannelHandler>(_ type: Handler.Type) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: type)) != nil
    }

    @Test func aPlainUpgradeSkipsTheHTTPPipelineAndSends101AndConnectedInOneWrite() throws {
        try channel.writeInbound(ByteBuffer(string: WebSocketUpgrades.upgradeRequest(token: GatewayConnectionRules.Fixture.token())))
        let (http, frames) = try WebSocketUpgrades.written(channel)
        #expect(http.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(http.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
        #expect(frames.map(\.opcode) == [.text])
        #expect(frames.first.map { String(buffer: $0.payload).contains(#""event":"connected""#) } == true)
        #expect(flushes.flushed.count == 1, "the 101 and `connected` in one flush: \(flushes.flushed)")
        #expect(has(GatewayConnectionHandler.self))
        #expect(!has(FirstRequestHandler.self), "it left")
        #expect(!has(HTTPResponseEncoder.self), "no HTTP handler was ever added")
    }

    @Test func framesRightBehindTheRequestReachTheWebSocket() throws {
        var bytes = ByteBuffer(string: WebSocketUpgrades.upgradeRequest(token: GatewayConnectionRules.Fixture.token()))
        var ping = WebSocketFrameWriter.frame(opcode: .ping, payload: Array("behind".utf8), maskingKey: (1, 2, 3, 4), allocator: channel.allocator)
        bytes.writeBuffer(&ping)
        try channel.writeInbound(bytes)
        let frames = try WebSocketUpgrades.written(channel).frames
        #expect(frames.map(\.opcode) == [.text, .pong])
        #expect(frames.last.map { String(buffer: $0.payload) } == "behind")
    }

    /// A head split over two reads is not the common form: NIO's parser gets both parts and upgrades it.
    @Test func anUpgradeSplitOverReadsIsUpgradedByTheHTTPPipeline() throws {
        let request = WebSocketUpgrades.upgradeRequest(token: GatewayConnectionRules.Fixture.token())
        let split = request.index(request.startIndex, offsetBy: 40)
        try channel.writeInbound(ByteBuffer(string: String(request[..<split])))
        #expect(has(HTTPResponseEncoder.self), "the HTTP pipeline took over")
        try channel.writeInbound(ByteBuffer(string: String(request[split...])))
        let (http, frames) = try WebSocketUpgrades.written(channel)
        #expect(http.hasPrefix("HTTP/1.1 101"))
        #expect(frames.first.map { String(buffer: $0.payload).contains(#""event":"connected""#) } == true)
        #expect(flushes.flushed.count == 1, "there too, the 101 and `connected` in one flush: \(flushes.flushed)")
    }

    @Test func aPlainRequestIsServedByTheHTTPPipelineAndMayUpgradeLater() throws {
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(try WebSocketUpgrades.written(channel).http.hasPrefix("HTTP/1.1 200 OK"))
        try channel.writeInbound(ByteBuffer(string: WebSocketUpgrades.upgradeRequest(token: GatewayConnectionRules.Fixture.token())))
        #expect(try WebSocketUpgrades.written(channel).http.hasPrefix("HTTP/1.1 101"))
        #expect(has(GatewayConnectionHandler.self))
    }

    /// The fast path never refuses: a request it parses but the upgrader refuses gets the HTTP pipeline's answer.
    @Test func aRefusedUpgradeGetsTheHTTPPipelinesAnswer() throws {
        let request = WebSocketUpgrades.upgradeRequest(token: "x").replacingOccurrences(of: "Version: 13", with: "Version: 8")
        try channel.writeInbound(ByteBuffer(string: request))
        let http = try WebSocketUpgrades.written(channel).http
        #expect(http.hasPrefix("HTTP/1.1 426"))
        #expect(http.contains("UPGRADE_REFUSED"))
        #expect(!channel.isActive)
    }

    @Test func aSilentConnectionIsClosedAfterTheRequestTimeout() throws {
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func aClientThatUpgradedIsNotClosedByTheRequestTimeout() throws {
        try channel.writeInbound(ByteBuffer(string: WebSocketUpgrades.upgradeRequest(token: GatewayConnectionRules.Fixture.token())))
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        #expect(channel.isActive)
    }
}

/// What `WebSocketUpgradeRequest` takes for the common upgrade, and what it leaves to NIO's parser.
@Suite struct UpgradeRequestParsing {
    func parse(_ text: String) -> WebSocketUpgradeRequest? {
        Array(text.utf8).withUnsafeBytes { WebSocketUpgradeRequest.parse($0) }
    }

    let plain = "GET /ws?token=abc HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

    @Test func theCommonFormWithItsLengthAndTheHeadersAnUpgradeReads() throws {
        let request = try #require(parse(plain + "frames"))
        #expect(request.length == plain.utf8.count)
        #expect(request.head.uri == "/ws?token=abc")
        #expect(request.head.headers["sec-websocket-key"] == ["dGhlIHNhbXBsZSBub25jZQ=="])
        #expect(request.head.headers["sec-websocket-version"] == ["13"])
        #expect(request.head.headers["host"].isEmpty, "headers no upgrade reads are not kept")
        #expect(request.head.isWebSocketUpgrade)
    }

    @Test func namesInAnyCaseValuesTrimmedAndTokenLists() throws {
        let text = "GET /ws HTTP/1.1\r\nUPGRADE:websocket  \r\nconnection: keep-alive, Upgrade\r\n"
            + "sec-websocket-key:\tdGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer t.o.k\r\nSec-WebSocket-Version: 13\r\n\r\n"
        let request = try #require(parse(text))
        #expect(request.head.headers["upgrade"] == ["websocket"])
        #expect(request.head.headers["sec-websocket-key"] == ["dGhlIHNhbXBsZSBub25jZQ=="])
        #expect(request.head.bearerToken == "t.o.k")
    }

    @Test(arguments: [
        ("an incomplete head", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"),
        ("another method", "POST /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
        ("a lowercase method", "get /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
        ("HTTP/1.0", "GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
        ("no upgrade", "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("upgrade to something else", "GET /ws HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"),
        ("a body", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 3\r\n\r\nabc"),
        ("chunked", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("a folded header", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n  more\r\nConnection: Upgrade\r\n\r\n"),
        ("a space before the colon", "GET /ws HTTP/1.1\r\nUpgrade : websocket\r\nConnection: Upgrade\r\n\r\n"),
        ("bare line feeds", "GET /ws HTTP/1.1\nUpgrade: websocket\nConnection: Upgrade\n\n"),
        ("a byte above ASCII", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Name: caf\u{e9}\r\n\r\n"),
        ("a control byte", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Name: a\u{1}b\r\n\r\n"),
        ("an absolute target", "GET http://x/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
        ("two spaces", "GET  /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
    ])
    func leftToTheHTTPParser(_ what: String, _ text: String) {
        #expect(parse(text) == nil, "\(what)")
    }

    @Test func aHeadLongerThanTheLimitIsLeftToTheHTTPParser() {
        let long = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Pad: \(String(repeating: "a", count: 9000))\r\n\r\n"
        #expect(parse(long) == nil)
    }
}

/// The request target of an upgrade: its path, and the `token` query parameter.
@Suite struct RequestTargets {
    @Test func pathAndQueryValues() {
        let target = RequestTarget("/ws?a=1&token=abc.def-_&flag&name=caf%C3%A9+au+lait")
        #expect(target.path == "/ws")
        #expect(target.queryValue("token") == "abc.def-_")
        #expect(target.queryValue("a") == "1")
        #expect(target.queryValue("flag") == "")
        #expect(target.queryValue("name") == "café au lait")
        #expect(target.queryValue("missing") == nil)
        #expect(target.queryValue("b%61d") == nil, "a name is matched decoded, not as written")
        #expect(RequestTarget("/ws?b%61d=1").queryValue("bad") == "1")
    }

    @Test func noQueryAndBadEscapes() {
        #expect(RequestTarget("/ws").queryValue("token") == nil)
        #expect(RequestTarget("/ws").path == "/ws")
        #expect(RequestTarget("/ws?").queryValue("token") == nil)
        #expect(RequestTarget("/ws?token=%zz").queryValue("token") == nil, "an invalid escape gives no value")
        #expect(RequestTarget("/ws?token=%FF").queryValue("token") == nil, "nor does invalid UTF-8")
    }
}

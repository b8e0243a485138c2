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

    func connection(_ fixture: GatewayConnectionRules.Fixture) throws -> EmbeddedChannel {
        let gateway = fixture.gateway
        let upgrader = WebSocketUpgrader(
            originPolicy: OriginPolicy(allowedOrigins: []), echoEnabled: false,
            makeGatewayHandler: { request, isOverCapacity in
                GatewayConnectionHandler(
                    gateway: gateway, token: request.bearerToken, isOverCapacity: isOverCapacity, maximumFrameSize: 16384,
                    maximumPendingBytes: 256 * 1024, timeouts: .init(), logger: Logger(label: "test"))
            },
            makeEchoHandler: { fatalError("no echo here") })
        let channel = fixture.channel
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        let encoder = HTTPResponseEncoder()
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        let pipelining = HTTPServerPipelineHandler()
        let errors = HTTPServerProtocolErrorHandler()
        let answering = Answering()
        let upgrade = WebSocketUpgradeHandler(
            upgrader: upgrader, handlers: .init(parsing: [pipelining, errors, decoder], encoder: encoder, serving: [answering]),
            isOverCapacity: { _ in false })
        for handler: ChannelHandler in [encoder, decoder, pipelining, errors, upgrade, answering] {
            try channel.pipeline.syncOperations.addHandler(handler)
        }
        return channel
    }

    func upgradeRequest(token: String) -> String {
        "GET /ws?token=\(token) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    }

    /// Everything written: the HTTP response, and after a 101 the WebSocket frames.
    func written(_ channel: EmbeddedChannel) throws -> (http: String, frames: [WebSocketFrame]) {
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

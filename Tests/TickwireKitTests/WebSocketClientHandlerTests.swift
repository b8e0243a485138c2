import NIOCore
import NIOEmbedded
import Testing
import TickwireWebSocket

@testable import TickwireKit

/// The client side of RFC 6455 in one handler, pinned on an `EmbeddedChannel`.
@Suite(.timeLimit(.minutes(1))) struct WebSocketClientHandlerTests {
    let endpoint = WebSocketEndpoint(usesTLS: false, host: "gw.example", port: 8080, target: "/ws?x=1")

    /// A channel with the handler, activated: returns it, the handler, and the request it wrote.
    func open(headers: [(String, String)] = []) throws -> (EmbeddedChannel, WebSocketClientHandler, String) {
        let handler = WebSocketClientHandler(endpoint: endpoint, headers: headers, maximumMessageBytes: 1 << 16, handshakeTimeout: .seconds(10))
        let channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        let request = String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self)))
        return (channel, handler, request)
    }

    func accept(for request: String) -> String {
        let key = request.split(separator: "\r\n").first { $0.lowercased().hasPrefix("sec-websocket-key:") }?
            .split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return WebSocketHandshake.acceptValue(forKey: String(key))
    }

    func serverFrame(_ opcode: WebSocketOpcode, _ payload: [UInt8]) -> ByteBuffer {
        WebSocketFrameWriter.frame(opcode: opcode, payload: payload, allocator: ByteBufferAllocator())
    }

    func events(_ handler: WebSocketClientHandler) async -> [TransportEvent] {
        var all: [TransportEvent] = []
        for await event in handler.events { all.append(event) }
        return all
    }

    @Test func theRequestCarriesTheUpgradeHeadersAndTheCallersOwn() throws {
        let (channel, _, request) = try open(headers: [("Authorization", "Bearer t")])
        #expect(request.hasPrefix("GET /ws?x=1 HTTP/1.1\r\nHost: gw.example:8080\r\n"))
        for header in ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Authorization: Bearer t"] {
            #expect(request.contains("\r\n\(header)\r\n"))
        }
        #expect(request.hasSuffix("\r\n\r\n"))
        _ = try? channel.finish()
    }

    /// A gateway refusing a token sends the 101, the error and the close at once, then hangs up:
    /// nothing of it may be lost.
    @Test func framesInTheSameReadAsThe101AreNotLost() async throws {
        let (channel, handler, request) = try open()
        var bytes = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept(for: request))\r\n\r\n")
        var text = serverFrame(.text, Array(#"{"event":"error"}"#.utf8))
        var close = serverFrame(.close, [0x0F, 0xA1])
        bytes.writeBuffer(&text)
        bytes.writeBuffer(&close)
        try channel.writeInbound(bytes)
        try await handler.handshake.get()
        #expect(await events(handler) == [.text(#"{"event":"error"}"#), .closed(code: 4001, reason: "")])
        // The close is echoed, masked, and the channel closed.
        let echo = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(echo.getInteger(at: 0, as: UInt8.self) == 0x88)
        #expect(echo.getInteger(at: 1, as: UInt8.self)! & 0x80 != 0)
        #expect(!channel.isActive)
    }

    @Test func aPingIsAnsweredWithAMaskedPongAndCountsAsLife() async throws {
        let (channel, handler, request) = try open()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: \(accept(for: request))\r\n\r\n"))
        try channel.writeInbound(serverFrame(.ping, [1, 2]))
        let pong = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(pong.getInteger(at: 0, as: UInt8.self) == 0x8A)
        #expect(pong.getInteger(at: 1, as: UInt8.self) == 0x82)
        try await channel.close()
        #expect(await events(handler) == [.alive, .closed(code: 1006, reason: "")])
    }

    @Test func aRefusedUpgradeFailsTheHandshakeWithItsStatus() async throws {
        let (channel, handler, _) = try open()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
        await #expect {
            try await handler.handshake.get()
        } throws: { ($0 as? NIOWebSocketTransport.HandshakeFailed)?.status == 403 }
        #expect(!channel.isActive)
    }

    @Test func aWrongAcceptKeyFailsTheHandshake() async throws {
        let (channel, handler, _) = try open()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: bm90IHRoZSBrZXk=\r\n\r\n"))
        await #expect {
            try await handler.handshake.get()
        } throws: { ($0 as? NIOWebSocketTransport.HandshakeFailed)?.reason == "wrong Sec-WebSocket-Accept" }
        _ = try? channel.finish()
    }

    @Test func aHangUpDuringTheHandshakeFailsItAndEndsTheEvents() async throws {
        let (channel, handler, _) = try open()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 Swi"))
        try await channel.close()
        await #expect(throws: (any Error).self) { try await handler.handshake.get() }
        #expect(await events(handler) == [.closed(code: 1006, reason: "")])
    }

    @Test func aMaskedFrameFromTheServerIsAProtocolErrorClosedWith1002() async throws {
        let (channel, handler, request) = try open()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: \(accept(for: request))\r\n\r\n"))
        try channel.writeInbound(
            WebSocketFrameWriter.frame(opcode: .text, payload: Array("hi".utf8), maskingKey: (1, 2, 3, 4), allocator: ByteBufferAllocator()))
        guard case .closed(let code, _) = await events(handler).last else {
            Issue.record("no close")
            return
        }
        #expect(code == 1002)
        let close = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(close.getInteger(at: 0, as: UInt8.self) == 0x88)
    }
}

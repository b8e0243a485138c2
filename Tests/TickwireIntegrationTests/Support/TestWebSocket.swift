import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import TickwireProtocol
import TickwireWebSocket

/// What a test client sees arrive.
enum Received: Sendable, CustomStringConvertible {
    case text(String)
    case binary([UInt8])
    /// A WebSocket pong (an answer to `sendFrame(.ping, ...)`).
    case pong([UInt8])
    case close(code: UInt16?, reason: String)
    /// The TCP connection ended (after a close frame or without one).
    case disconnected

    var description: String {
        switch self {
        case .text(let text): "text \(text.prefix(300))"
        case .binary(let bytes): "binary \(bytes.count) bytes"
        case .pong(let bytes): "pong \(bytes.count) bytes"
        case .close(let code, let reason): "close \(code.map(String.init) ?? "-") \(reason)"
        case .disconnected: "disconnected"
        }
    }
}

struct HandshakeRefused: Error, CustomStringConvertible {
    var status: Int
    var body: String
    var description: String { "handshake refused with HTTP \(status): \(body)" }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A WebSocket client for tests, on NIO: it does the handshake itself, can send any
/// frame (unmasked, oversized, fragmented, binary), answers pings and close frames
/// like a browser, and can stop reading to play a slow consumer.
final class TestWebSocket: @unchecked Sendable {
    let channel: Channel
    let mailbox: Mailbox<Received>
    /// Every event name received so far (including the ones tests skipped over).
    private let seen = NIOLockedValueBox<[String]>([])

    private init(channel: Channel, mailbox: Mailbox<Received>) {
        self.channel = channel
        self.mailbox = mailbox
    }

    static let group = MultiThreadedEventLoopGroup.singleton

    /// `answersClose: false` plays a client that never answers the server's close frame.
    /// With `tls`, the connection is `wss://`, checking the server's certificate for `localhost`.
    static func connect(
        port: Int, path: String = "/ws", token: String? = nil, headers: [(String, String)] = [],
        host: String = "127.0.0.1", answersClose: Bool = true, tls: NIOSSLContext? = nil
    ) async throws -> TestWebSocket {
        var target = path
        if let token { target += (path.contains("?") ? "&" : "?") + "token=" + token }
        let mailbox = Mailbox<Received>()
        let handshake = NIOLockedValueBox<EventLoopPromise<Void>?>(nil)
        let key = WebSocketHandshake.randomKey()
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                let promise = channel.eventLoop.makePromise(of: Void.self)
                handshake.withLockedValue { $0 = promise }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: "localhost"))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ClientHandler(key: key, mailbox: mailbox, handshake: promise, answersClose: answersClose))
                }
            }
            .connect(host: host, port: port).get()
        var request = "GET \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try await channel.writeAndFlush(channel.allocator.buffer(string: request)).get()
        try await handshake.withLockedValue { $0! }.futureResult.get()
        return TestWebSocket(channel: channel, mailbox: mailbox)
    }

    // MARK: Sending

    func send(_ text: String) async throws {
        try await sendFrame(.text, Array(text.utf8))
    }

    func send(_ object: JSONValue) async throws {
        try await send(object.jsonText)
    }

    func sendFrame(_ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true, masked: Bool = true) async throws {
        let key: (UInt8, UInt8, UInt8, UInt8)? =
            masked ? (.random(in: 0...255), .random(in: 0...255), .random(in: 0...255), .random(in: 0...255)) : nil
        let frame = WebSocketFrameWriter.frame(opcode: opcode, fin: fin, payload: payload, maskingKey: key, allocator: channel.allocator)
        try await channel.writeAndFlush(frame).get()
    }

    func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).get()
    }

    /// Sends a close frame and waits for the server's answer.
    func close(code: UInt16 = 1000) async throws -> UInt16? {
        try await sendFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)])
        return try await expectClose()
    }

    func disconnect() {
        channel.close(promise: nil)
    }

    // MARK: Reading

    func pauseReading() async throws {
        try await channel.setOption(.autoRead, value: false).get()
    }

    func resumeReading() async throws {
        try await channel.setOption(.autoRead, value: true).get()
        channel.read()
    }

    func next(timeout: Duration = .seconds(5)) async throws -> Received {
        guard let item = await mailbox.next(timeout: timeout) else {
            throw TestFailure("nothing arrived within \(timeout)")
        }
        if case .text(let text) = item, let event = try? JSONParser.parse(text).objectValue?["event"]?.stringValue {
            seen.withLockedValue { $0.append(event) }
        }
        return item
    }

    /// The next frame, which must be a JSON event.
    /// Pongs (answers to the test's own pings) are skipped: they are not events.
    func nextEvent(timeout: Duration = .seconds(5)) async throws -> Event {
        let deadline = ContinuousClock.now + timeout
        while true {
            let item = try await next(timeout: max(.zero, deadline - ContinuousClock.now))
            if case .pong = item { continue }
            guard case .text(let text) = item else { throw TestFailure("expected an event, got \(item)") }
            return try Event(text)
        }
    }

    /// Skips other events until one named `name` arrives.
    func expectEvent(_ name: String, timeout: Duration = .seconds(5)) async throws -> Event {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw TestFailure("no \(name) event within \(timeout)") }
            let item = try await next(timeout: remaining)
            switch item {
            case .text(let text):
                let event = try Event(text)
                if event.name == name { return event }
            case .close, .disconnected:
                throw TestFailure("connection closed while waiting for \(name): \(item)")
            case .binary, .pong:
                continue
            }
        }
    }

    /// Skips everything until the server's close frame; returns its code.
    func expectClose(timeout: Duration = .seconds(5)) async throws -> UInt16? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw TestFailure("no close within \(timeout)") }
            switch try await next(timeout: remaining) {
            case .close(let code, _): return code
            case .disconnected: throw TestFailure("disconnected without a close frame")
            default: continue
            }
        }
    }

    /// Skips everything until the connection ends, with or without a close frame.
    func expectEnd(timeout: Duration = .seconds(5)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw TestFailure("the connection did not end within \(timeout)") }
            switch try await next(timeout: remaining) {
            case .close, .disconnected: return
            default: continue
            }
        }
    }

    /// Collects events for `duration`, failing if the connection closes.
    func collectEvents(for duration: Duration) async throws -> [Event] {
        let deadline = ContinuousClock.now + duration
        var events: [Event] = []
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return events }
            guard let item = await mailbox.next(timeout: remaining) else { return events }
            switch item {
            case .text(let text): events.append(try Event(text))
            case .close, .disconnected: throw TestFailure("connection closed: \(item)")
            case .binary, .pong: continue
            }
        }
    }

    /// Asserts that no event of `name` arrives within `duration`.
    func expectNoEvent(_ name: String, for duration: Duration) async throws {
        for event in try await collectEvents(for: duration) where event.name == name {
            throw TestFailure("unexpected \(name): \(event.text)")
        }
    }
}

/// One server frame, parsed.
struct Event: Sendable, CustomStringConvertible {
    let text: String
    let object: JSONObject
    let arrivedAt: ContinuousClock.Instant

    init(_ text: String) throws {
        self.text = text
        guard let object = try JSONParser.parse(text).objectValue else { throw TestFailure("not an object: \(text)") }
        self.object = object
        self.arrivedAt = .now
    }

    var name: String { object["event"]?.stringValue ?? "" }
    var data: JSONObject { object["data"]?.objectValue ?? JSONObject() }
    var id: String? { object["id"]?.stringValue }
    var errorCode: String? { name == "error" ? data["code"]?.stringValue : nil }
    /// The envelope's `timestamp`: when the server built the frame.
    var sentAt: Timestamp { Timestamp(rfc3339: object["timestamp"]?.stringValue ?? "") ?? Timestamp(millisecondsSinceEpoch: 0) }
    var description: String { text }
}

/// Client side of the connection: handshake, then frames.
private final class ClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let key: String
    let mailbox: Mailbox<Received>
    var handshake: EventLoopPromise<Void>?
    var buffer: ByteBuffer?
    var upgraded = false
    var refusedStatus: Int?
    var refusedBodyLength = 0
    var closeSent = false
    let answersClose: Bool
    let parser = WebSocketFrameParser(role: .client, maximumFrameSize: 64 << 20)
    var assembler = WebSocketMessageAssembler(maximumMessageSize: 64 << 20)

    init(key: String, mailbox: Mailbox<Received>, handshake: EventLoopPromise<Void>, answersClose: Bool) {
        self.answersClose = answersClose
        self.key = key
        self.mailbox = mailbox
        self.handshake = handshake
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        process(context: context)
    }

    private func process(context: ChannelHandlerContext) {
        if !upgraded {
            if let refusedStatus {
                if buffer!.readableBytes >= refusedBodyLength {
                    handshake?.fail(HandshakeRefused(status: refusedStatus, body: String(buffer: buffer!)))
                    handshake = nil
                    context.close(promise: nil)
                }
                return
            }
            guard let view = buffer?.readableBytesView, let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            let headerLength = end.upperBound - view.startIndex
            let head = buffer!.readString(length: headerLength)!
            let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
            guard status == 101 else {
                refusedStatus = status
                refusedBodyLength = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }?
                    .split(separator: ":").last.flatMap { Int($0.trimmingWhitespace()) } ?? 0
                process(context: context)
                return
            }
            let accept = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("sec-websocket-accept:") }?
                .split(separator: ":", maxSplits: 1).last.map { $0.trimmingWhitespace() }
            guard accept == WebSocketHandshake.acceptValue(forKey: key) else {
                handshake?.fail(TestFailure("bad Sec-WebSocket-Accept"))
                handshake = nil
                return
            }
            upgraded = true
            handshake?.succeed()
            handshake = nil
        }
        while true {
            do {
                guard let frame = try parser.nextFrame(from: &buffer!) else { break }
                guard let event = try assembler.receive(frame) else { continue }
                switch event {
                case .text(let payload): mailbox.push(.text(String(buffer: payload)))
                case .binary(let payload): mailbox.push(.binary(Array(payload.readableBytesView)))
                case .ping(let payload):
                    context.writeAndFlush(wrapOutboundOut(WebSocketFrameWriter.frame(
                        opcode: .pong, payload: payload, maskingKey: (1, 2, 3, 4), allocator: context.channel.allocator)),
                        promise: nil)
                case .pong(let payload): mailbox.push(.pong(Array(payload.readableBytesView)))
                case .close(let code, let reason):
                    mailbox.push(.close(code: code, reason: reason))
                    if !closeSent, answersClose {
                        closeSent = true
                        let reply = WebSocketFrameWriter.closeFrame(code: code, maskingKey: (1, 2, 3, 4), allocator: context.channel.allocator)
                        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
                    }
                }
            } catch {
                mailbox.push(.close(code: nil, reason: "client saw a protocol error: \(error)"))
                context.close(promise: nil)
                return
            }
        }
        if buffer?.readableBytes == 0 { buffer = nil }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let handshake {
            let body = buffer.map { String(buffer: $0) } ?? ""
            handshake.fail(HandshakeRefused(status: refusedStatus ?? 0, body: body))
            self.handshake = nil
        }
        mailbox.push(.disconnected)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

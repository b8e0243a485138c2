import NIOConcurrencyHelpers
import NIOCore
import TickwireWebSocket

/// The client side of RFC 6455 in one handler: it sends the upgrade request, checks the `101` and
/// its `Sec-WebSocket-Accept`, then reads frames from the same buffer (masked writes, pings
/// answered, fragments joined, UTF-8 checked) and reports them as `TransportEvent`s.
final class WebSocketClientHandler: ChannelDuplexHandler, @unchecked Sendable {
    // @unchecked: every mutable field is touched on the channel's event loop only.
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case connecting
        case handshaking
        case open
        case closed
    }

    let events: AsyncStream<TransportEvent>
    private let continuation: AsyncStream<TransportEvent>.Continuation
    private let handshakePromise: NIOLockedValueBox<EventLoopPromise<Void>?> = NIOLockedValueBox(nil)
    private let endpoint: WebSocketEndpoint
    private let headers: [(String, String)]
    private let key = WebSocketHandshake.randomKey()
    private let parser: WebSocketFrameParser
    private var assembler: WebSocketMessageAssembler
    private let handshakeTimeout: TimeAmount
    private var phase = Phase.connecting
    private var buffer = ByteBuffer()
    private var timeout: Scheduled<Void>?
    private let handshakeFuture = NIOLockedValueBox<EventLoopFuture<Void>?>(nil)

    init(endpoint: WebSocketEndpoint, headers: [(String, String)], maximumMessageBytes: Int, handshakeTimeout: TimeAmount) {
        (events, continuation) = AsyncStream.makeStream(of: TransportEvent.self, bufferingPolicy: .unbounded)
        self.endpoint = endpoint
        self.headers = headers
        self.parser = WebSocketFrameParser(role: .client, maximumFrameSize: maximumMessageBytes)
        self.assembler = WebSocketMessageAssembler(maximumMessageSize: maximumMessageBytes)
        self.handshakeTimeout = handshakeTimeout
    }

    /// Completes when the server accepted the upgrade; fails with `HandshakeFailed` or the channel's error.
    var handshake: EventLoopFuture<Void> { handshakeFuture.withLockedValue { $0! } }

    static func maskedFrame(_ opcode: WebSocketOpcode, _ payload: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var generator = SystemRandomNumberGenerator()
        let mask = (UInt8.random(in: 0...255, using: &generator), UInt8.random(in: 0...255, using: &generator),
                    UInt8.random(in: 0...255, using: &generator), UInt8.random(in: 0...255, using: &generator))
        return WebSocketFrameWriter.frame(opcode: opcode, payload: payload, maskingKey: mask, allocator: allocator)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        handshakePromise.withLockedValue { $0 = promise }
        handshakeFuture.withLockedValue { $0 = promise.futureResult }
        if context.channel.isActive { sendRequest(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context: context)
        context.fireChannelActive()
    }

    private func sendRequest(context: ChannelHandlerContext) {
        guard case .connecting = phase else { return }
        phase = .handshaking
        let defaultPort = endpoint.usesTLS ? 443 : 80
        let host = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
        var request = "GET \(endpoint.target) HTTP/1.1\r\nHost: \(endpoint.port == defaultPort ? host : "\(host):\(endpoint.port)")\r\n"
        request += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \(key)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        let channel = context.channel
        timeout = context.eventLoop.scheduleTask(in: handshakeTimeout) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        if case .handshaking = phase {
            guard let length = WebSocketHandshake.headLength(in: buffer) else {
                if buffer.readableBytes > 16_384 { failHandshake(status: nil, reason: "response head too long", context: context) }
                return
            }
            let head = buffer.readString(length: length) ?? ""
            guard let problem = Self.check(head, key: key) else {
                phase = .open
                timeout?.cancel()
                completeHandshake(.success(()))
                return readFrames(context: context)
            }
            return failHandshake(status: problem.status, reason: problem.reason, context: context)
        }
        readFrames(context: context)
    }

    private func readFrames(context: ChannelHandlerContext) {
        while case .open = phase {
            let frame: WebSocketFrame?
            do {
                frame = try parser.nextFrame(from: &buffer)
                guard let frame else { break }
                guard let event = try assembler.receive(frame) else { continue }
                handle(event, context: context)
            } catch {
                // A server that breaks the protocol: close with its code and report it.
                report(code: error.closeCode, reason: error.reason)
                sendClose(error.closeCode, context: context)
                return
            }
        }
        buffer.discardReadBytes()
    }

    private func handle(_ event: TickwireWebSocket.WebSocketEvent, context: ChannelHandlerContext) {
        switch event {
        case .text(let payload):
            continuation.yield(.text(String(buffer: payload)))
        case .ping(let payload):
            context.writeAndFlush(
                wrapOutboundOut(Self.maskedFrame(.pong, Array(payload.readableBytesView), allocator: context.channel.allocator)),
                promise: nil)
            continuation.yield(.alive)
        case .pong, .binary:
            continuation.yield(.alive)
        case .close(let code, let reason):
            report(code: code ?? 1005, reason: reason)
            sendClose(code ?? 1000, context: context)
        }
    }

    private func sendClose(_ code: UInt16, context: ChannelHandlerContext) {
        phase = .closed
        let channel = context.channel
        let frame = Self.maskedFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)], allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func failHandshake(status: Int?, reason: String, context: ChannelHandlerContext) {
        phase = .closed
        timeout?.cancel()
        completeHandshake(.failure(NIOWebSocketTransport.HandshakeFailed(endpoint: endpoint, status: status, reason: reason)))
        context.close(promise: nil)
    }

    /// Nil when `head` is a valid `101` for `key`; else the status and what is wrong.
    static func check(_ head: String, key: String) -> (status: Int?, reason: String)? {
        let lines = head.split(separator: "\r\n")
        let statusLine = lines.first?.split(separator: " ") ?? []
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            return (nil, "not an HTTP response")
        }
        guard status == 101 else { return (status, "HTTP \(status)") }
        var accept: Substring?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == "sec-websocket-accept" {
                accept = line[line.index(after: colon)...].drop { $0 == " " }
            }
        }
        guard accept.map(String.init) == WebSocketHandshake.acceptValue(forKey: key) else {
            return (101, "wrong Sec-WebSocket-Accept")
        }
        return nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        completeHandshake(.failure(ChannelError.eof))
        phase = .closed
        report(code: 1006, reason: "")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        completeHandshake(.failure(error))
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A connect that failed never made the channel active: the promise must not leak.
        completeHandshake(.failure(ChannelError.eof))
        report(code: 1006, reason: "")
    }

    /// Completes the handshake promise once; later outcomes are ignored.
    private func completeHandshake(_ result: Result<Void, any Error>) {
        handshakePromise.withLockedValue { promise in
            defer { promise = nil }
            return promise
        }?.completeWith(result)
    }

    private var reported = false

    private func report(code: UInt16, reason: String) {
        guard !reported else { return }
        reported = true
        continuation.yield(.closed(code: code, reason: reason))
        continuation.finish()
    }
}

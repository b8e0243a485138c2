import NIOCore
import TickwireProtocol
import TickwireWebSocket

/// The connection-level half of RFC 6455 that every WebSocket endpoint of the
/// server shares (`/ws` and the conformance `/echo` run the very same code):
/// frames in, fragments joined, pings answered, the close handshake in both
/// directions, and protocol errors failed with 1002/1007/1009.
struct WebSocketConnectionState {
    enum Phase {
        case open
        /// We sent a close frame and wait for the peer's.
        case closeSent
        case closed
    }

    var parser: WebSocketFrameParser
    var assembler: WebSocketMessageAssembler
    /// Bytes of a frame that has not fully arrived; nil (no memory) between frames.
    var pending: ByteBuffer?
    var phase = Phase.open
    var closeTimeout: Scheduled<Void>?
    /// The code this side closed with, or the peer's (1005 for a close frame without one), for metrics.
    var closeCode: UInt16?
    /// Frames were written since the last flush: `channelReadComplete` flushes them, so a reply
    /// (a pong above all) leaves in the read cycle that caused it.
    var needsFlush = false

    init(maximumFrameSize: Int, maximumMessageSize: Int) {
        self.parser = WebSocketFrameParser(role: .server, maximumFrameSize: maximumFrameSize)
        self.assembler = WebSocketMessageAssembler(maximumMessageSize: maximumMessageSize)
    }
}

/// A channel handler that speaks WebSocket through `WebSocketConnectionState`.
/// Conformers implement what to do with frames and messages; the protocol
/// extension does the rest.
protocol WebSocketEndpoint: ChannelInboundHandler where InboundIn == ByteBuffer, OutboundOut == ByteBuffer {
    var webSocket: WebSocketConnectionState { get set }
    /// How long to wait for the peer's close frame after sending ours with `code`.
    func closeHandshakeTimeout(for code: UInt16) -> TimeAmount
    /// The connection is closing with `code` (once per connection; 1006 is the caller's to count).
    func closing(code: UInt16)
    /// Every frame, control frames included, before it is interpreted.
    func frameArrived(context: ChannelHandlerContext)
    /// A complete text or binary message while the connection is open.
    func messageArrived(_ event: WebSocketEvent, context: ChannelHandlerContext)
    /// A protocol violation is about to fail the connection.
    func violationOccurred(_ violation: WebSocketViolation, context: ChannelHandlerContext)
}

extension WebSocketEndpoint {
    func violationOccurred(_ violation: WebSocketViolation, context: ChannelHandlerContext) {}
    func closing(code: UInt16) {}

    /// Records the close code the first time one is decided.
    private func closeDecided(_ code: UInt16) {
        guard webSocket.closeCode == nil else { return }
        webSocket.closeCode = code
        closing(code: code)
    }

    /// Feeds inbound bytes through the parser and acts on every complete frame.
    func receive(_ incoming: ByteBuffer, context: ChannelHandlerContext) {
        guard webSocket.phase != .closed else { return }
        var buffer: ByteBuffer
        if var pending = webSocket.pending {
            var incoming = incoming
            pending.writeBuffer(&incoming)
            buffer = pending
            webSocket.pending = nil
        } else {
            buffer = incoming
        }
        while webSocket.phase != .closed {
            let frame: WebSocketFrame
            do {
                guard let next = try webSocket.parser.nextFrame(from: &buffer) else { break }
                frame = next
            } catch {
                fail(error, context: context)
                return
            }
            frameArrived(context: context)
            guard webSocket.phase != .closed else { return }
            let event: WebSocketEvent?
            do {
                event = try webSocket.assembler.receive(frame)
            } catch {
                fail(error, context: context)
                return
            }
            guard let event else { continue }
            switch event {
            case .ping(let payload):
                if webSocket.phase == .open {
                    context.write(
                        wrapOutboundOut(WebSocketFrameWriter.frame(opcode: .pong, payload: payload, allocator: context.channel.allocator)),
                        promise: nil)
                    webSocket.needsFlush = true
                }
            case .pong:
                break
            case .close(let code, let reason):
                closeReceived(code: code, reason: reason, context: context)
            case .text, .binary:
                if webSocket.phase == .open { messageArrived(event, context: context) }
            }
        }
        if buffer.readableBytes > 0, webSocket.phase != .closed {
            // Copy the partial frame out: keeping a slice would pin the whole read buffer.
            var copy = context.channel.allocator.buffer(capacity: buffer.readableBytes)
            copy.writeBuffer(&buffer)
            webSocket.pending = copy
        }
    }

    /// The peer closed: answer with a close frame if we have not sent one, then end the TCP connection.
    func closeReceived(code: UInt16?, reason: String, context: ChannelHandlerContext) {
        switch webSocket.phase {
        case .open:
            closeDecided(code ?? CloseCode.noStatusReceived.rawValue)
            webSocket.phase = .closed
            let frame = WebSocketFrameWriter.closeFrame(code: code, allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .closeSent:
            webSocket.phase = .closed
            webSocket.closeTimeout?.cancel()
            context.close(promise: nil)
        case .closed:
            break
        }
    }

    /// Starts the close handshake: our close frame, then wait (bounded) for the peer's.
    func initiateClose(code: UInt16, reason: String, context: ChannelHandlerContext) {
        guard webSocket.phase == .open else { return }
        webSocket.phase = .closeSent
        closeDecided(code)
        webSocket.needsFlush = false
        let frame = WebSocketFrameWriter.closeFrame(code: code, reason: reason, allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        webSocket.closeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: closeHandshakeTimeout(for: code)) {
            context.close(promise: nil)
        }
    }

    /// Fails the connection (RFC 6455 section 7.1.7): close frame with the violation's code, then TCP close.
    func fail(_ violation: WebSocketViolation, context: ChannelHandlerContext) {
        violationOccurred(violation, context: context)
        let wasOpen = webSocket.phase == .open
        webSocket.phase = .closed
        webSocket.closeTimeout?.cancel()
        webSocket.pending = nil
        if wasOpen {
            closeDecided(violation.closeCode)
            let frame = WebSocketFrameWriter.closeFrame(
                code: violation.closeCode, reason: violation.reason, allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}

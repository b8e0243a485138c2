import NIOCore
import NIOHTTP1

/// The only handler of a new public connection (behind its socket slot and TLS): a first request
/// that is a WebSocket upgrade in the common form (`WebSocketUpgradeRequest`), complete in the
/// first read, upgrades at once, its 101 and the WebSocket's first frames written together. Any
/// other first read gets the full HTTP pipeline (`installHTTP`), which sees the same bytes and
/// serves them exactly as before, refusals of upgrades included.
///
/// A reconnect storm is all upgrades: this is where a restart's CPU goes.
final class FirstRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let upgrader: WebSocketUpgrader
    private let requestTimeout: TimeAmount
    private let installHTTP: (ChannelPipeline.SynchronousOperations) throws -> Void
    private let isOverCapacity: (Channel) -> Bool
    /// A client that sends nothing keeps its socket for `requestTimeout` only, as with HTTP.
    private var deadline = ScheduledDeadline()
    private var isDone = false

    init(
        upgrader: WebSocketUpgrader, requestTimeout: TimeAmount, isOverCapacity: @escaping (Channel) -> Bool,
        installHTTP: @escaping (ChannelPipeline.SynchronousOperations) throws -> Void
    ) {
        self.upgrader = upgrader
        self.requestTimeout = requestTimeout
        self.isOverCapacity = isOverCapacity
        self.installHTTP = installHTTP
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armDeadline(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armDeadline(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isDone else {
            context.fireChannelRead(data)
            return
        }
        isDone = true
        deadline.cancel()
        var bytes = unwrapInboundIn(data)
        let request = bytes.withUnsafeReadableBytes { WebSocketUpgradeRequest.parse($0) }
        if let request, let accept = try? upgrader.validate(request.head) {
            bytes.moveReaderIndex(forwardBy: request.length)
            upgrade(request.head, accept: accept, framesBehind: bytes, context: context)
        } else {
            serveHTTP(data, context: context)
        }
    }

    private func upgrade(_ request: HTTPRequestHead, accept: String, framesBehind: ByteBuffer, context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        // Written, not flushed: the handler's first frames (`connected`) go in the same system call.
        context.write(NIOAny(Self.switchingProtocols(accept: accept, allocator: context.channel.allocator)), promise: nil)
        do {
            try pipeline.addHandler(upgrader.handler(for: request, isOverCapacity: isOverCapacity(context.channel)))
        } catch {
            context.close(promise: nil)
            return
        }
        if framesBehind.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(framesBehind))
            context.fireChannelReadComplete()
        }
        context.flush()
        pipeline.removeHandler(context: context, promise: nil)
    }

    private func serveHTTP(_ data: NIOAny, context: ChannelHandlerContext) {
        do {
            try installHTTP(context.pipeline.syncOperations)
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func armDeadline(context: ChannelHandlerContext) {
        guard !deadline.isArmed, !isDone else { return }
        deadline.arm(in: requestTimeout, context: context) {
            self.deadline.passed()
            context.close(promise: nil)
        }
    }

    static func switchingProtocols(accept: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 160)
        buffer.writeStaticString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
        buffer.writeString(accept)
        buffer.writeStaticString("\r\n\r\n")
        return buffer
    }
}

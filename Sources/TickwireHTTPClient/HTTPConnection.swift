import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// One kept-alive HTTP/1.1 connection with pipelined requests: responses complete
/// requests in order. A publisher at hundreds of requests per second needs this: a
/// connection per request would leave thousands of sockets in TIME_WAIT.
public final class HTTPConnection: Sendable {
    let channel: Channel
    let target: HTTPClient.Target

    public static func connect(
        _ target: HTTPClient.Target, trust: HTTPClient.Trust = .system,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> HTTPConnection {
        let tls = target.usesTLS ? try trust.makeContext() : nil
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try HTTPClient.addTLS(tls, to: channel, for: target) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(PipelineHandler())
                }
            }
            .connect(host: target.host, port: target.port).get()
        return HTTPConnection(channel: channel, target: target)
    }

    private init(channel: Channel, target: HTTPClient.Target) {
        self.channel = channel
        self.target = target
    }

    public var isActive: Bool { channel.isActive }

    /// Sends a request on this connection; `path` defaults to the target's. A server that
    /// does not answer within `timeout` gets the connection closed: pipelined responses come
    /// in order, so a stuck one fails every request behind it too.
    public func request(
        method: HTTPMethod, path: String? = nil, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> HTTPClient.Response {
        let head = HTTPClient.requestHead(target, path: path, method: method, headers: headers, bodyCount: body?.count)
        let promise = channel.eventLoop.makePromise(of: HTTPClient.Response.self)
        let request = Request(head: head, body: body.map { ByteBuffer(bytes: $0) }, promise: promise)
        let channel = self.channel
        // On the loop, so the check and the write are one step: an active channel's handler
        // takes the promise (and fails it if the channel closes); a closed one fails it here.
        channel.eventLoop.execute {
            guard channel.isActive else {
                promise.fail(ChannelError.ioOnClosedChannel)
                return
            }
            channel.writeAndFlush(request, promise: nil)
            let timer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        return try await promise.futureResult.get()
    }

    public func close() async {
        try? await channel.close()
    }

    struct Request: Sendable {
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var promise: EventLoopPromise<HTTPClient.Response>
    }

    private final class PipelineHandler: ChannelDuplexHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundIn = Request
        typealias OutboundOut = HTTPClientRequestPart

        var pending = CircularBuffer<EventLoopPromise<HTTPClient.Response>>()
        var status = 0
        var headers = HTTPHeaders()
        var body = ByteBuffer()

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            let request = unwrapOutboundIn(data)
            pending.append(request.promise)
            context.write(wrapOutboundOut(.head(request.head)), promise: nil)
            if let body = request.body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
            context.write(wrapOutboundOut(.end(nil)), promise: promise)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = Int(head.status.code)
                headers = head.headers
                body.clear()
            case .body(var chunk):
                body.writeBuffer(&chunk)
            case .end:
                pending.popFirst()?.succeed(HTTPClient.Response(status: status, headers: headers, body: String(buffer: body)))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            while let promise = pending.popFirst() { promise.fail(ChannelError.eof) }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            while let promise = pending.popFirst() { promise.fail(error) }
            context.close(promise: nil)
        }
    }
}

import NIOCore
import NIOHTTP1

/// Performs `HTTPDeadlines` for one connection: one scheduled task at a time, re-armed on
/// request and response events. Sits just before the request handler; removed, with it,
/// when the connection upgrades to WebSocket (the WebSocket heartbeat takes over).
final class HTTPTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "tickwire.http-timeouts"

    private var deadlines: HTTPDeadlines
    private var deadline = ScheduledDeadline()
    private var requestKeepsAlive = true
    private var requestVersion = HTTPVersion.http1_1

    init(requestTimeout: TimeAmount, keepAliveTimeout: TimeAmount) {
        self.deadlines = HTTPDeadlines(requestTimeout: requestTimeout, keepAliveTimeout: keepAliveTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { perform(deadlines.connected(), context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(deadlines.connected(), context: context)
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
        switch unwrapInboundIn(data) {
        case .head(let head):
            requestKeepsAlive = head.isKeepAlive
            requestVersion = head.version
            perform(deadlines.headReceived(declaresBody: head.declaresBody), context: context)
        case .body:
            break
        case .end:
            perform(deadlines.requestEnded(), context: context)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            perform(deadlines.responseEnded(keepAlive: requestKeepsAlive), context: context)
        }
        context.write(data, promise: promise)
    }

    private func perform(_ action: HTTPDeadlines.Action, context: ChannelHandlerContext) {
        switch action {
        case .arm(let timeout):
            deadline.arm(in: timeout, context: context) {
                self.deadline.passed()
                self.perform(self.deadlines.deadlinePassed(), context: context)
            }
        case .disarm:
            deadline.cancel()
        case .answerTimeoutAndClose:
            let body = #"{"error":{"code":"REQUEST_TIMEOUT","message":"the request body did not arrive in time"}}"# + "\n"
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: requestVersion, status: .requestTimeout, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .close:
            context.close(promise: nil)
        case .none:
            break
        }
    }
}

extension HTTPRequestHead {
    /// Whether a body follows the head: a positive `Content-Length`, or chunked transfer coding.
    var declaresBody: Bool {
        if let length = headers["content-length"].first.flatMap({ Int($0) }), length > 0 { return true }
        return headers["transfer-encoding"].contains { $0.lowercased().contains("chunked") }
    }

    /// The declared `Content-Length`, if any.
    var contentLength: Int? { headers["content-length"].first.flatMap { Int($0) } }
}

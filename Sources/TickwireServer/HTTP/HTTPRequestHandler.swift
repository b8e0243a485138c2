import NIOCore
import NIOHTTP1

/// Collects each HTTP request (bounded body), hands it to `HTTPAPI`, writes the response.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maximumBodySize = 64 * 1024
    static let name = "tickwire.http"

    private let api: HTTPAPI
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// The body is over the limit: it was answered with 413, and the rest of it is not read.
    private var refusedTooLarge = false

    init(api: HTTPAPI) {
        self.api = api
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            refusedTooLarge = false
            if let length = head.contentLength, length > Self.maximumBodySize { refuseTooLarge(context: context) }
        case .body(var chunk):
            guard !refusedTooLarge else { return }
            if body.count + chunk.readableBytes > Self.maximumBodySize {
                refuseTooLarge(context: context)
            } else {
                body.append(contentsOf: chunk.readBytes(length: chunk.readableBytes)!)
            }
        case .end:
            guard let head, !refusedTooLarge else { return }
            self.head = nil
            let request = HTTPRequest(head: head, body: body)
            body = []
            let api = self.api
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            Task {
                let response = await api.respond(to: request)
                eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.write(response, for: head, context: context)
                }
            }
        }
    }

    /// Answers 413 as soon as the declared length, or the bytes read so far, pass the limit, and
    /// closes: reading a 100 MB body to its end first would be the client's choice, not ours.
    private func refuseTooLarge(context: ChannelHandlerContext) {
        guard let head else { return }
        refusedTooLarge = true
        body = []
        var closing = head
        closing.headers.replaceOrAdd(name: "Connection", value: "close")
        write(.error(.payloadTooLarge, code: "PAYLOAD_TOO_LARGE", "the body exceeds 64 KiB"), for: closing, context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func write(_ response: HTTPResponse, for request: HTTPRequestHead, context: ChannelHandlerContext) {
        response.write(answering: request, context: context)
    }
}

extension HTTPResponse {
    /// Writes this response to `request` from a handler whose outbound type is `HTTPServerResponsePart`:
    /// no body for HEAD, and the connection closed after it unless the request keeps it alive.
    func write(answering request: HTTPRequestHead, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Cache-Control", value: cacheControl)
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: status, headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        if request.method != .HEAD {
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }
}

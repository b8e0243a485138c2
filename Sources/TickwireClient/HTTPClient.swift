import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 client: one request per connection. Enough for `tickwire publish`
/// and the load generator's publishers; not a general-purpose client (no TLS, no redirects).
public enum HTTPClient {
    public struct Response: Sendable {
        public var status: Int
        public var body: String
    }

    public struct InvalidURL: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Target: Sendable {
        public var host: String
        public var port: Int
        public var path: String

        /// Parses `http://host[:port][/path]`.
        public init(url: String) throws(InvalidURL) {
            guard url.hasPrefix("http://") else { throw InvalidURL(description: "only http:// URLs are supported: \(url)") }
            var rest = url.dropFirst("http://".count)
            if let slash = rest.firstIndex(of: "/") {
                path = String(rest[slash...])
                rest = rest[..<slash]
            } else {
                path = "/"
            }
            if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
                guard let value = Int(rest[rest.index(after: colon)...]), (1...65535).contains(value) else {
                    throw InvalidURL(description: "bad port in \(url)")
                }
                port = value
                rest = rest[..<colon]
            } else {
                port = 80
            }
            host = String(rest.drop { $0 == "[" }.reversed().drop { $0 == "]" }.reversed())
            guard !host.isEmpty else { throw InvalidURL(description: "no host in \(url)") }
        }

        public func appending(path suffix: String) -> Target {
            var copy = self
            copy.path = (path.hasSuffix("/") ? String(path.dropLast()) : path) + suffix
            return copy
        }
    }

    public static func request(
        _ target: Target, method: HTTPMethod, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: TimeAmount = .seconds(10), group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Response {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: Response.self)
        let channel = try await ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                }
            }
            .connect(host: target.host, port: target.port).get()
        let head = requestHead(target, method: method, headers: headers + [("Connection", "close")], bodyCount: body?.count)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let timeoutTask = eventLoop.scheduleTask(in: timeout) {
            promise.fail(ChannelError.connectTimeout(timeout))
            channel.close(promise: nil)
        }
        defer { timeoutTask.cancel() }
        return try await promise.futureResult.get()
    }

    /// The request head both clients send: Host, the caller's headers, and for a body its
    /// length and (unless given) a JSON content type.
    static func requestHead(
        _ target: Target, path: String? = nil, method: HTTPMethod, headers: [(String, String)], bodyCount: Int?
    ) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path ?? target.path)
        head.headers.add(name: "Host", value: "\(target.host):\(target.port)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let bodyCount {
            head.headers.add(name: "Content-Length", value: String(bodyCount))
            if !head.headers.contains(name: "Content-Type") { head.headers.add(name: "Content-Type", value: "application/json") }
        }
        return head
    }

    private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        let promise: EventLoopPromise<Response>
        var status = 0
        var body = ByteBuffer()

        init(promise: EventLoopPromise<Response>) { self.promise = promise }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): status = Int(head.status.code)
            case .body(var chunk): body.writeBuffer(&chunk)
            case .end:
                promise.succeed(Response(status: status, body: String(buffer: body)))
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(ChannelError.eof)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(error)
            context.close(promise: nil)
        }
    }
}

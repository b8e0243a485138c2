import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TickwireProtocol

/// A minimal HTTP/1.1 client: one request per connection, over TLS for `https://`. Enough for
/// `tickwire publish`, the load generator's publishers and a JWKS fetch; not a general-purpose
/// client (no redirects, no proxies).
public enum HTTPClient {
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: String

        /// How long the response may be reused, from `Cache-Control` (`no-cache` and `no-store`: 0).
        public var maxAge: TimeAmount? {
            let directives = headers["cache-control"].flatMap { $0.split(separator: ",") }.map { $0.trimmingWhitespace().lowercased() }
            if directives.contains("no-cache") || directives.contains("no-store") { return .zero }
            for directive in directives where directive.hasPrefix("max-age=") {
                if let seconds = Int64(directive.dropFirst("max-age=".count)), seconds >= 0 { return .seconds(seconds) }
            }
            return nil
        }
    }

    /// Which certificates an `https://` server may present.
    public struct Trust: Sendable {
        /// A PEM file of the CA certificates to trust instead of the system's.
        public var caFile: String?

        public init(caFile: String? = nil) {
            self.caFile = caFile
        }

        /// The system's trust store.
        public static let system = Trust()

        public func makeContext() throws -> NIOSSLContext {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            if let caFile { configuration.trustRoots = .file(caFile) }
            return try NIOSSLContext(configuration: configuration)
        }
    }

    public struct InvalidURL: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Target: Sendable {
        public var host: String
        public var port: Int
        public var path: String
        public var usesTLS: Bool

        /// Parses `http://host[:port][/path]` or `https://...`.
        public init(url: String) throws(InvalidURL) {
            if url.hasPrefix("https://") {
                usesTLS = true
            } else if url.hasPrefix("http://") {
                usesTLS = false
            } else {
                throw InvalidURL(description: "only http:// and https:// URLs are supported: \(url)")
            }
            var rest = url.drop { $0 != "/" }.dropFirst(2)
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
                port = usesTLS ? 443 : 80
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
        trust: Trust = .system, timeout: TimeAmount = .seconds(10),
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Response {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: Response.self)
        let tls = target.usesTLS ? try trust.makeContext() : nil
        let channel = try await ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try addTLS(tls, to: channel, for: target) }
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

    /// TLS first in the pipeline, verifying the server against `target.host`.
    static func addTLS(_ context: NIOSSLContext, to channel: Channel, for target: Target) throws {
        // An IP address is not a server name (no SNI): NIO checks it against the certificate's IP entries instead.
        let isAddress = target.host.contains(":") || target.host.allSatisfy { $0.isNumber || $0 == "." }
        try channel.pipeline.syncOperations.addHandler(
            NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : target.host))
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
        var headers = HTTPHeaders()
        var body = ByteBuffer()

        init(promise: EventLoopPromise<Response>) { self.promise = promise }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = Int(head.status.code)
                headers = head.headers
            case .body(var chunk): body.writeBuffer(&chunk)
            case .end:
                promise.succeed(Response(status: status, headers: headers, body: String(buffer: body)))
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(ChannelError.eof)
        }

        /// A channel that never connected is torn down without `channelInactive`: the promise
        /// must not outlive it unfulfilled. (Completing a fulfilled promise again does nothing.)
        func handlerRemoved(context: ChannelHandlerContext) {
            promise.fail(ChannelError.eof)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(error)
            context.close(promise: nil)
        }
    }
}

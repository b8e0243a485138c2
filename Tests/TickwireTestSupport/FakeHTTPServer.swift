import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An HTTP server for tests that plays an API (CoinGecko's REST, an identity provider's JWKS):
/// every request gets the response `respond` picks for it, and is recorded with its time.
public final class FakeHTTPServer: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var target: String
        public var headers: [(String, String)]
        public var at: ContinuousClock.Instant

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: String

        public init(status: Int = 200, headers: [(String, String)] = [("Content-Type", "application/json")], body: String) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    private let channel: Channel
    private let log: NIOLockedValueBox<[Request]>
    public let port: Int

    /// Every request so far, oldest first.
    public var requests: [Request] { log.withLockedValue { $0 } }

    /// Starts on a free loopback port, over TLS when given a context.
    public static func start(
        tls: NIOSSLContext? = nil, _ respond: @escaping @Sendable (Request) -> Response
    ) async throws -> FakeHTTPServer {
        let log = NIOLockedValueBox<[Request]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Answer(log: log, respond: respond))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeHTTPServer(channel: channel, log: log)
    }

    private init(channel: Channel, log: NIOLockedValueBox<[Request]>) {
        self.channel = channel
        self.log = log
        self.port = channel.localAddress!.port!
    }

    deinit { channel.close(promise: nil) }

    private final class Answer: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let log: NIOLockedValueBox<[Request]>
        let respond: @Sendable (Request) -> Response
        var head: HTTPRequestHead?

        init(log: NIOLockedValueBox<[Request]>, respond: @escaping @Sendable (Request) -> Response) {
            self.log = log
            self.respond = respond
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body: break
            case .end:
                guard let head else { return }
                let request = Request(method: head.method.rawValue, target: head.uri, headers: head.headers.map { ($0.name, $0.value) }, at: .now)
                log.withLockedValue { $0.append(request) }
                let response = respond(request)
                var headers = HTTPHeaders(response.headers)
                headers.replaceOrAdd(name: "Content-Length", value: String(response.body.utf8.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: response.status), headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}

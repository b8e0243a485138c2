import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An identity provider's JWKS endpoint over HTTPS, for `--jwks-url`: it answers every GET with
/// the response set last, and counts the requests.
final class TestJWKSServer: Sendable {
    struct Response: Sendable {
        var status: HTTPResponseStatus = .ok
        var body: String
        var cacheControl: String?
    }

    private let response: NIOLockedValueBox<Response>
    private let requests: NIOLockedValueBox<Int>
    private let channel: Channel
    let port: Int

    var url: String { "https://localhost:\(port)/.well-known/jwks.json" }
    var requestCount: Int { requests.withLockedValue { $0 } }

    static func start(certificate: TestCertificateAuthority.Issued, serving first: Response) async throws -> TestJWKSServer {
        let tls = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificatePath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.keyPath, format: .pem))))
        let response = NIOLockedValueBox(first)
        let requests = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: TestWebSocket.group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Answer(response: response, requests: requests))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TestJWKSServer(channel: channel, response: response, requests: requests)
    }

    private init(channel: Channel, response: NIOLockedValueBox<Response>, requests: NIOLockedValueBox<Int>) {
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.response = response
        self.requests = requests
    }

    func serve(_ next: Response) {
        response.withLockedValue { $0 = next }
    }

    deinit { channel.close(promise: nil) }

    private final class Answer: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let response: NIOLockedValueBox<Response>
        let requests: NIOLockedValueBox<Int>

        init(response: NIOLockedValueBox<Response>, requests: NIOLockedValueBox<Int>) {
            self.response = response
            self.requests = requests
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            requests.withLockedValue { $0 += 1 }
            let current = response.withLockedValue { $0 }
            var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(current.body.utf8.count))])
            if let cacheControl = current.cacheControl { headers.add(name: "Cache-Control", value: cacheControl) }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: current.status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: current.body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

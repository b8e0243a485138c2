import NIOConcurrencyHelpers
import NIOHTTP1
import NIOSSL

/// An identity provider's JWKS endpoint over HTTPS, for `--jwks-url`: every GET gets the
/// response set last.
final class TestJWKSServer: Sendable {
    struct Response: Sendable {
        var status: HTTPResponseStatus = .ok
        var body: String
        var cacheControl: String?
    }

    private let server: FakeHTTPServer
    private let response: NIOLockedValueBox<Response>

    var url: String { "https://localhost:\(server.port)/.well-known/jwks.json" }
    var requestCount: Int { server.requests.count }

    static func start(certificate: TestCertificateAuthority.Issued, serving first: Response) async throws -> TestJWKSServer {
        let tls = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificatePath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.keyPath, format: .pem))))
        let response = NIOLockedValueBox(first)
        let server = try await FakeHTTPServer.start(tls: tls) { _ in
            let current = response.withLockedValue { $0 }
            var headers = [("Content-Type", "application/json")]
            if let cacheControl = current.cacheControl { headers.append(("Cache-Control", cacheControl)) }
            return .init(status: Int(current.status.code), headers: headers, body: current.body)
        }
        return TestJWKSServer(server: server, response: response)
    }

    private init(server: FakeHTTPServer, response: NIOLockedValueBox<Response>) {
        self.server = server
        self.response = response
    }

    func serve(_ next: Response) {
        response.withLockedValue { $0 = next }
    }
}

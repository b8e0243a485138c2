import Foundation
import Testing
import TickwireProtocol

/// `--jwks-url`: the keys come from the identity provider over HTTPS, and follow its rotations.
@Suite(.timeLimit(.minutes(1)))
struct JWKSFromAURL {
    let authority: TestCertificateAuthority

    init() async throws {
        authority = try await TestCertificateAuthority()
    }

    func document(_ keys: [JSONValue]) -> String { JSONValue.object(["keys": .array(keys)]).jsonText }

    func gateway(_ jwks: TestJWKSServer) async throws -> TestServer {
        try await TestServer.start(
            ["--feed", "none", "--jwks-url", jwks.url, "--jwks-ca-file", authority.certificatePath, "--jwks-min-refresh", "1"],
            credentials: .apiKeyOnly)
    }

    func outcome(_ server: TestServer, _ token: String) async throws -> String {
        let socket = try await TestWebSocket.connect(port: server.port, token: token)
        let event = try await socket.nextEvent()
        return event.errorCode ?? event.name
    }

    @Test func keysComeFromTheURLAndFollowARotation() async throws {
        let jwks = try await TestJWKSServer.start(
            certificate: try await authority.issue("idp"),
            serving: .init(body: document([try TestKeys.rsaJWK(kid: "rsa-1")]), cacheControl: "public, max-age=3600"))
        let server = try await gateway(jwks)
        try await eventually("the key set is fetched at start") {
            try await outcome(server, TestKeys.rs256(TestKeys.validClaims(), kid: "rsa-1")) == "connected"
        }
        // The provider rotates: a token signed with a key the gateway has not seen makes it fetch again.
        jwks.serve(.init(body: document([try TestKeys.rsaJWK(kid: "rsa-1"), TestKeys.p256JWK(kid: "ec-2")]), cacheControl: "max-age=3600"))
        let fetchesBefore = jwks.requestCount
        try await eventually(timeout: .seconds(10), "a token of the new key is accepted") {
            try await outcome(server, TestKeys.es256(TestKeys.validClaims(), kid: "ec-2")) == "connected"
        }
        #expect(jwks.requestCount > fetchesBefore)
        #expect(try await outcome(server, TestKeys.rs256(TestKeys.validClaims(), kid: "rsa-9")) == "INVALID_TOKEN")
    }

    @Test func maxAgeSetsTheRefreshAndAFailedOneKeepsTheLastGoodKeys() async throws {
        let jwks = try await TestJWKSServer.start(
            certificate: try await authority.issue("idp"),
            serving: .init(body: document([try TestKeys.rsaJWK(kid: "rsa-1")]), cacheControl: "max-age=1"))
        let server = try await gateway(jwks)
        try await eventually("refetched on max-age") { jwks.requestCount >= 3 }
        jwks.serve(.init(status: .internalServerError, body: "{}"))
        let failing = jwks.requestCount
        try await eventually(timeout: .seconds(10), "the failing endpoint is retried") { jwks.requestCount >= failing + 2 }
        #expect(try await outcome(server, TestKeys.rs256(TestKeys.validClaims(), kid: "rsa-1")) == "connected")
        #expect(server.stderr.contains("JWKS fetch failed"))
    }

    /// The gateway starts without its keys; tokens are refused until the provider answers.
    @Test func theGatewayStartsBeforeTheKeysArrive() async throws {
        let jwks = try await TestJWKSServer.start(
            certificate: try await authority.issue("idp"), serving: .init(status: .serviceUnavailable, body: "down"))
        let server = try await gateway(jwks)
        #expect(try await outcome(server, TestKeys.rs256(TestKeys.validClaims(), kid: "rsa-1")) == "INVALID_TOKEN")
        jwks.serve(.init(body: document([try TestKeys.rsaJWK(kid: "rsa-1")])))
        try await eventually(timeout: .seconds(15), "accepted once the keys arrive") {
            try await outcome(server, TestKeys.rs256(TestKeys.validClaims(), kid: "rsa-1")) == "connected"
        }
    }

    @Test func aPlainHTTPURLIsRefused() async throws {
        let result = try await TestProcess.run(nil, [
            "serve", "--port", "0", "--api-key", TestServer.apiKey, "--jwks-url", "http://idp.example.com/jwks.json",
        ])
        #expect(result.status != 0 && result.stderr.contains("https://"))
    }
}

import Crypto
import CryptoExtras
import Foundation
import Testing
import TickwireCore
import TickwireProtocol
import TickwireWebSocket

/// Key material written to temporary files, and tokens signed with it.
enum TestKeys {
    static let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let p256 = P256.Signing.PrivateKey()
    static let ed25519 = Curve25519.Signing.PrivateKey()

    static func write(_ text: String, name: String) throws -> String {
        let path = NSTemporaryDirectory() + "tickwire-\(UUID().uuidString)-\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static var ed25519PEM: String {
        let der = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00] + Array(ed25519.publicKey.rawRepresentation)
        return "-----BEGIN PUBLIC KEY-----\n\(Base64.encode(der))\n-----END PUBLIC KEY-----\n"
    }

    static func sign(_ claims: JSONObject, header: JSONObject, with sign: ([UInt8]) throws -> [UInt8]) rethrows -> String {
        let input = Base64.encodeURL(Array(JSONValue.object(header).jsonText.utf8)) + "."
            + Base64.encodeURL(Array(JSONValue.object(claims).jsonText.utf8))
        return input + "." + Base64.encodeURL(try sign(Array(input.utf8)))
    }

    static func validClaims(sub: String = "alice") -> JSONObject {
        ["sub": .string(sub), "exp": .number(String(Tokens.now + 600)), "iat": .number(String(Tokens.now))]
    }

    static func rs256(_ claims: JSONObject, kid: String? = nil) throws -> String {
        var header: JSONObject = ["alg": "RS256", "typ": "JWT"]
        if let kid { header["kid"] = .string(kid) }
        return try sign(claims, header: header) { input in
            Array(try rsa.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
        }
    }

    static func es256(_ claims: JSONObject, kid: String? = nil) throws -> String {
        var header: JSONObject = ["alg": "ES256"]
        if let kid { header["kid"] = .string(kid) }
        return try sign(claims, header: header) { Array(try p256.signature(for: SHA256.hash(data: $0)).rawRepresentation) }
    }

    /// The RSA public key as a JWK.
    static func rsaJWK(kid: String) throws -> JSONValue {
        let rsa = try TestKeys.rsa.publicKey.getKeyPrimitives()
        return ["kty": "RSA", "kid": .string(kid), "use": "sig", "n": .string(Base64.encodeURL(rsa.modulus)),
                "e": .string(Base64.encodeURL(rsa.publicExponent))]
    }

    /// The P-256 public key as a JWK.
    static func p256JWK(kid: String) -> JSONValue {
        let point = p256.publicKey.rawRepresentation
        return ["kty": "EC", "crv": "P-256", "kid": .string(kid), "x": .string(Base64.encodeURL(point.prefix(32))),
                "y": .string(Base64.encodeURL(point.suffix(32)))]
    }

    static func edDSA(_ claims: JSONObject) throws -> String {
        try sign(claims, header: ["alg": "EdDSA"]) { Array(try ed25519.signature(for: $0)) }
    }

    static func hmac<H: HashFunction>(_ claims: JSONObject, alg: String, secret: [UInt8], hash: H.Type) -> String {
        sign(claims, header: ["alg": .string(alg)]) { Array(HMAC<H>.authenticationCode(for: $0, using: SymmetricKey(data: secret))) }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct JWTValidation {
    func outcome(_ server: TestServer, _ token: String) async throws -> String {
        let socket = try await TestWebSocket.connect(port: server.port, token: token)
        let first = try await socket.nextEvent()
        if first.name == "connected" { return "connected" }
        let code = first.errorCode ?? first.name
        #expect(try await socket.expectClose() == 4001)
        return code
    }

    static let secret = TestServer.jwtSecret

    static var refusedBySecretServer: [(String, String, String)] {
        let now = Tokens.now
        let good: JSONObject = ["sub": "alice", "exp": .number(String(now + 600)), "iss": "wallet", "aud": "tickwire"]
        var expired = good
        expired["exp"] = .number(String(now - 5))
        var notYet = good
        notYet["nbf"] = .number(String(now + 300))
        var wrongIssuer = good
        wrongIssuer["iss"] = "someone-else"
        var wrongAudience = good
        wrongAudience["aud"] = .array(["other", "another"])
        var noSub = good
        noSub["sub"] = nil
        var emptySub = good
        emptySub["sub"] = ""
        var noExp = good
        noExp["exp"] = nil
        let valid = Tokens.claims(good)
        let parts = valid.split(separator: ".")
        let tamperedPayload = parts[0] + "." + Base64.encodeURL(Array(#"{"sub":"admin","exp":9999999999,"iss":"wallet","aud":"tickwire"}"#.utf8)) + "." + parts[2]
        let badSignature = parts[0] + "." + parts[1] + "." + Base64.encodeURL(Array(repeating: UInt8(7), count: 32))
        let algNone = Base64.encodeURL(Array(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + parts[1] + "."
        return [
            ("alg none", algNone, "INVALID_TOKEN"),
            ("tampered payload", String(tamperedPayload), "INVALID_TOKEN"),
            ("bad signature", String(badSignature), "INVALID_TOKEN"),
            ("expired", Tokens.claims(expired), "TOKEN_EXPIRED"),
            ("nbf in the future", Tokens.claims(notYet), "INVALID_TOKEN"),
            ("wrong iss", Tokens.claims(wrongIssuer), "INVALID_TOKEN"),
            ("wrong aud", Tokens.claims(wrongAudience), "INVALID_TOKEN"),
            ("no sub", Tokens.claims(noSub), "INVALID_TOKEN"),
            ("empty sub", Tokens.claims(emptySub), "INVALID_TOKEN"),
            ("no exp", Tokens.claims(noExp), "INVALID_TOKEN"),
            ("malformed", "abc.def", "INVALID_TOKEN"),
            ("RS256 token against a shared secret", try! TestKeys.rs256(good), "INVALID_TOKEN"),
        ]
    }

    @Test(arguments: refusedBySecretServer)
    func refusedTokens(name: String, token: String, code: String) async throws {
        let server = try await TestServer.start([
            "--feed", "none", "--jwt-issuer", "wallet", "--jwt-audience", "tickwire", "--jwt-leeway", "0",
        ])
        #expect(try await outcome(server, token) == code, "\(name)")
    }

    @Test func hs256HS384AndHS512AreAllAcceptedWithASharedSecret() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let claims = TestKeys.validClaims()
        let secret = Array(Self.secret.utf8)
        #expect(try await outcome(server, TestKeys.hmac(claims, alg: "HS256", secret: secret, hash: SHA256.self)) == "connected")
        #expect(try await outcome(server, TestKeys.hmac(claims, alg: "HS384", secret: secret, hash: SHA384.self)) == "connected")
        #expect(try await outcome(server, TestKeys.hmac(claims, alg: "HS512", secret: secret, hash: SHA512.self)) == "connected")
        #expect(try await outcome(server, TestKeys.hmac(claims, alg: "HS256", secret: Array("other".utf8), hash: SHA256.self)) == "INVALID_TOKEN")
    }

    @Test func leewayToleratesSmallClockDifferences() async throws {
        let server = try await TestServer.start(["--feed", "none", "--jwt-leeway", "30"])
        let claims: JSONObject = ["sub": "alice", "exp": .number(String(Tokens.now - 10))]
        #expect(try await outcome(server, Tokens.claims(claims)) == "connected")
    }

    @Test func anRSAKeyAcceptsRS256AndRefusesAnHSTokenSignedWithThePublicKey() async throws {
        let pem = TestKeys.rsa.publicKey.pemRepresentation
        let server = try await TestServer.start(["--feed", "none", "--jwt-public-key", try TestKeys.write(pem, name: "rsa.pem")], credentials: .apiKeyOnly)
        #expect(try await outcome(server, TestKeys.rs256(TestKeys.validClaims())) == "connected")
        // The classic algorithm confusion: HS256 keyed with the public key's PEM text.
        let confused = TestKeys.hmac(TestKeys.validClaims(), alg: "HS256", secret: Array(pem.utf8), hash: SHA256.self)
        #expect(try await outcome(server, confused) == "INVALID_TOKEN")
        #expect(try await outcome(server, Tokens.make(subject: "alice")) == "INVALID_TOKEN")
    }

    @Test func ecP256AndEd25519PublicKeys() async throws {
        let ec = try await TestServer.start(
            ["--feed", "none", "--jwt-public-key", try TestKeys.write(TestKeys.p256.publicKey.pemRepresentation, name: "ec.pem")],
            credentials: .apiKeyOnly)
        #expect(try await outcome(ec, TestKeys.es256(TestKeys.validClaims())) == "connected")
        #expect(try await outcome(ec, TestKeys.edDSA(TestKeys.validClaims())) == "INVALID_TOKEN")
        let ed = try await TestServer.start(
            ["--feed", "none", "--jwt-public-key", try TestKeys.write(TestKeys.ed25519PEM, name: "ed.pem")], credentials: .apiKeyOnly)
        #expect(try await outcome(ed, TestKeys.edDSA(TestKeys.validClaims())) == "connected")
        #expect(try await outcome(ed, TestKeys.es256(TestKeys.validClaims())) == "INVALID_TOKEN")
    }

    @Test func aJWKSFileWithKeyIDs() async throws {
        let jwks: JSONValue = ["keys": [try TestKeys.rsaJWK(kid: "rsa-1"), TestKeys.p256JWK(kid: "ec-1")]]
        let server = try await TestServer.start(["--feed", "none", "--jwks", try TestKeys.write(jwks.jsonText, name: "jwks.json")], credentials: .apiKeyOnly)
        #expect(try await outcome(server, TestKeys.rs256(TestKeys.validClaims(), kid: "rsa-1")) == "connected")
        #expect(try await outcome(server, TestKeys.rs256(TestKeys.validClaims(), kid: "ec-1")) == "INVALID_TOKEN")
        #expect(try await outcome(server, TestKeys.es256(TestKeys.validClaims())) == "connected")
    }
}

import TickwireCore
import TickwireProtocol

enum Tokens {
    static let signer = HS256TokenSigner(secret: TestServer.jwtSecret)

    static func make(subject: String, lifetime: Int64 = 3600, issuer: String? = nil, audience: String? = nil) -> String {
        signer.token(subject: subject, lifetimeSeconds: lifetime, issuer: issuer, audience: audience)
    }

    static func claims(_ claims: JSONObject, header: JSONObject = ["alg": "HS256", "typ": "JWT"]) -> String {
        signer.sign(claims: claims, header: header)
    }

    static var now: Int64 { Timestamp.now().millisecondsSinceEpoch / 1000 }
}

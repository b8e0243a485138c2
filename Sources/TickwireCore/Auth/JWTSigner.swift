import Crypto
import TickwireProtocol

/// Mints HS256 tokens: `tickwire token`, the dev token `serve` prints, and the load generator.
public struct HS256TokenSigner: Sendable {
    let key: SymmetricKey

    public init(secret: String) {
        self.key = SymmetricKey(data: Array(secret.utf8))
    }

    /// A token for `subject` valid for `lifetimeSeconds` from `now`.
    public func token(
        subject: String, lifetimeSeconds: Int64, now: Timestamp = .now(), issuer: String? = nil,
        audience: String? = nil
    ) -> String {
        let issuedAt = now.millisecondsSinceEpoch / 1000
        var claims: JSONObject = ["sub": .string(subject), "iat": .number(String(issuedAt)),
            "exp": .number(String(issuedAt + lifetimeSeconds))]
        if let issuer { claims["iss"] = .string(issuer) }
        if let audience { claims["aud"] = .string(audience) }
        return sign(claims: claims)
    }

    /// Signs arbitrary claims (tests use it to build tokens with missing or odd claims).
    public func sign(claims: JSONObject, header: JSONObject = ["alg": "HS256", "typ": "JWT"]) -> String {
        let input = Base64.encodeURL(Array(JSONValue.object(header).jsonText.utf8)) + "."
            + Base64.encodeURL(Array(JSONValue.object(claims).jsonText.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: key)
        return input + "." + Base64.encodeURL(Array(mac))
    }
}

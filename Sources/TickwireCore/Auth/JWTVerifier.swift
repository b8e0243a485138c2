import Crypto
import CryptoExtras
import TickwireProtocol

/// What a valid token says about its holder.
public struct VerifiedToken: Sendable, Equatable {
    public var subject: String
    public var expiresAt: Timestamp
}

/// Why a token was refused; maps onto the protocol's error codes.
public enum TokenRejection: Error, Sendable, Equatable {
    case missing
    case invalid(String)
    case expired

    public var errorCode: ErrorCode {
        switch self {
        case .missing: .missingToken
        case .invalid: .invalidToken
        case .expired: .tokenExpired
        }
    }

    public var message: String {
        switch self {
        case .missing: #"a token is required: connect with ?token=JWT, or send {"action":"auth","token":"JWT"} as the first message"#
        case .invalid(let reason): "invalid token: \(reason)"
        case .expired: "the token has expired"
        }
    }
}

/// Verifies JWTs synchronously (no actor hop on the connect path), with the
/// algorithm chosen by the configured keys, never by the token alone.
public struct JWTVerifier: Sendable {
    public let keyStore: JWTKeyStore
    public var issuer: String?
    public var audience: String?
    /// Tolerated clock difference, in milliseconds.
    public var leewayMilliseconds: Int64

    public static let maximumTokenLength = 8192
    public static let maximumSubjectLength = 128

    /// Verifies with fixed keys.
    public init(keys: JWTKeySet, issuer: String? = nil, audience: String? = nil, leewaySeconds: Int = 30) {
        self.init(keyStore: JWTKeyStore(keys), issuer: issuer, audience: audience, leewaySeconds: leewaySeconds)
    }

    /// Verifies with whatever keys `keyStore` holds at the time (a JWKS refreshed from a URL).
    public init(keyStore: JWTKeyStore, issuer: String? = nil, audience: String? = nil, leewaySeconds: Int = 30) {
        self.keyStore = keyStore
        self.issuer = issuer
        self.audience = audience
        self.leewayMilliseconds = Int64(leewaySeconds) * 1000
    }

    public func verify(_ token: String?, now: Timestamp) -> Result<VerifiedToken, TokenRejection> {
        guard let token, !token.isEmpty else { return .failure(.missing) }
        do {
            return .success(try verifyOrThrow(token, now: now))
        } catch {
            return .failure(error)
        }
    }

    func verifyOrThrow(_ token: String, now: Timestamp) throws(TokenRejection) -> VerifiedToken {
        guard token.utf8.count <= Self.maximumTokenLength else { throw .invalid("token is too long") }
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .invalid("a JWT has three dot-separated parts") }
        guard let headerBytes = Base64.decodeURL(parts[0]),
            let payloadBytes = Base64.decodeURL(parts[1]),
            let signature = Base64.decodeURL(parts[2])
        else { throw .invalid("parts are not base64url (RFC 7515: no padding, no + or /)") }
        guard case .object(let header)? = try? JSONParser.parse(headerBytes, maxDepth: 4) else {
            throw .invalid("header is not a JSON object")
        }
        guard case .string(let algorithm)? = header["alg"] else { throw .invalid("header has no alg") }
        guard algorithm.lowercased() != "none" else { throw .invalid("unsigned tokens (alg none) are refused") }
        guard header["crit"] == nil else { throw .invalid("critical header extensions are not supported") }
        let keyID = header["kid"]?.stringValue

        let keys = keyStore.keys
        guard !keys.isEmpty else {
            keyStore.unknownKeyIDSeen(keyID ?? "")
            throw .invalid("no verification keys yet: the key set has not been fetched")
        }
        let candidates: [JWTKeySet.Key]
        switch keys.candidates(algorithm: algorithm, keyID: keyID) {
        case .keys(let keys): candidates = keys
        case .unknownKeyID:
            keyStore.unknownKeyIDSeen(keyID ?? "")
            throw .invalid("unknown kid")
        case .algorithmNotAccepted: throw .invalid("algorithm \(algorithm) is not accepted by this server")
        }
        let signingInput = Array(token.utf8.prefix(parts[0].count + 1 + parts[1].count))
        guard candidates.contains(where: { Self.isValid(signature, of: signingInput, algorithm: algorithm, key: $0) })
        else { throw .invalid("signature does not verify") }

        guard case .object(let claims)? = try? JSONParser.parse(payloadBytes, maxDepth: 16) else {
            throw .invalid("payload is not a JSON object")
        }
        return try checkClaims(claims, now: now)
    }

    func checkClaims(_ claims: JSONObject, now: Timestamp) throws(TokenRejection) -> VerifiedToken {
        guard case .string(let subject)? = claims["sub"], !subject.isEmpty,
            subject.count <= Self.maximumSubjectLength
        else { throw .invalid("sub must be a non-empty string of at most 128 characters") }
        guard let expiry = claims["exp"] else { throw .invalid("exp is required") }
        guard let expiresAt = Self.numericDate(expiry) else { throw .invalid("exp must be a NumericDate") }
        if now.millisecondsSinceEpoch >= expiresAt.millisecondsSinceEpoch + leewayMilliseconds { throw .expired }
        if let notBefore = claims["nbf"] {
            guard let date = Self.numericDate(notBefore) else { throw .invalid("nbf must be a NumericDate") }
            if now.millisecondsSinceEpoch + leewayMilliseconds < date.millisecondsSinceEpoch {
                throw .invalid("token is not valid yet (nbf)")
            }
        }
        if let issuedAt = claims["iat"] {
            guard let date = Self.numericDate(issuedAt) else { throw .invalid("iat must be a NumericDate") }
            if now.millisecondsSinceEpoch + leewayMilliseconds < date.millisecondsSinceEpoch {
                throw .invalid("token was issued in the future (iat)")
            }
        }
        if let issuer {
            guard claims["iss"]?.stringValue == issuer else { throw .invalid("wrong issuer") }
        }
        if let audience {
            let matches: Bool
            switch claims["aud"] {
            case .string(let value)?: matches = value == audience
            case .array(let values)?: matches = values.contains(.string(audience))
            default: matches = false
            }
            guard matches else { throw .invalid("wrong audience") }
        }
        return VerifiedToken(subject: subject, expiresAt: expiresAt)
    }

    static func numericDate(_ value: JSONValue) -> Timestamp? {
        guard let seconds = value.doubleValue, seconds.isFinite, abs(seconds) < 1e13 else { return nil }
        return Timestamp(millisecondsSinceEpoch: Int64((seconds * 1000).rounded(.down)))
    }

    static func isValid(_ signature: [UInt8], of input: [UInt8], algorithm: String, key: JWTKeySet.Key) -> Bool {
        switch (key, algorithm) {
        case (.hmac(let secret), "HS256"):
            return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: SymmetricKey(data: secret))
        case (.hmac(let secret), "HS384"):
            return HMAC<SHA384>.isValidAuthenticationCode(signature, authenticating: input, using: SymmetricKey(data: secret))
        case (.hmac(let secret), "HS512"):
            return HMAC<SHA512>.isValidAuthenticationCode(signature, authenticating: input, using: SymmetricKey(data: secret))
        case (.rsa(let publicKey), "RS256"):
            return publicKey.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: input),
                padding: .insecurePKCS1v1_5)
        case (.rsa(let publicKey), "RS384"):
            return publicKey.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA384.hash(data: input),
                padding: .insecurePKCS1v1_5)
        case (.rsa(let publicKey), "RS512"):
            return publicKey.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA512.hash(data: input),
                padding: .insecurePKCS1v1_5)
        case (.p256(let publicKey), "ES256"):
            guard signature.count == 64, let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return publicKey.isValidSignature(ecdsa, for: SHA256.hash(data: input))
        case (.ed25519(let publicKey), "EdDSA"), (.ed25519(let publicKey), "Ed25519"):
            return publicKey.isValidSignature(signature, for: input)
        default:
            return false
        }
    }
}

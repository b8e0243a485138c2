import Crypto
import CryptoExtras
import TickwireProtocol

/// The keys the gateway accepts tokens from. Each key admits only the algorithms
/// of its own type, whatever a token's header names (PROTOCOL.md section 1):
/// a shared secret admits HS256/384/512, an RSA key RS256/384/512, a P-256 key
/// ES256 and an Ed25519 key EdDSA.
public struct JWTKeySet: Sendable {
    public enum Key: Sendable {
        case hmac([UInt8])
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)

        var algorithms: Set<String> {
            switch self {
            case .hmac: ["HS256", "HS384", "HS512"]
            case .rsa: ["RS256", "RS384", "RS512"]
            case .p256: ["ES256"]
            case .ed25519: ["EdDSA", "Ed25519"]
            }
        }

        var kind: String {
            switch self {
            case .hmac: "HMAC secret"
            case .rsa: "RSA public key"
            case .p256: "EC P-256 public key"
            case .ed25519: "Ed25519 public key"
            }
        }
    }

    public struct Entry: Sendable {
        public var key: Key
        /// Matched against the token header's `kid` when both are present.
        public var keyID: String?
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }

    /// HMAC secrets shorter than this are refused: RFC 7518 section 3.2 asks for at least the
    /// hash's output size, 32 bytes for HS256.
    public static let minimumSecretBytes = 32

    /// A shared secret as a key, if it is long enough to be one.
    public static func hmacSecret(_ secret: [UInt8], name: String = "the JWT secret") throws(KeyLoadingError) -> Key {
        guard secret.count >= minimumSecretBytes else {
            throw KeyLoadingError(
                "\(name) is \(secret.count) bytes; an HMAC secret needs at least \(minimumSecretBytes) (e.g. `openssl rand -base64 32`)")
        }
        return .hmac(secret)
    }

    public mutating func add(_ key: Key, keyID: String? = nil) {
        entries.append(Entry(key: key, keyID: keyID))
    }

    enum Candidates {
        case keys([Key])
        /// The set names its keys and none has this `kid`.
        case unknownKeyID
        /// No key of the set admits the algorithm.
        case algorithmNotAccepted
    }

    /// The keys that may verify a token with this header. A `kid` selects its key; when the
    /// set names its keys, a `kid` it does not know matches nothing (never the unnamed keys).
    /// A token without `kid` may be verified by any key of the algorithm's type.
    func candidates(algorithm: String, keyID: String?) -> Candidates {
        let admitting = entries.filter { $0.key.algorithms.contains(algorithm) }
        guard let keyID, entries.contains(where: { $0.keyID != nil }) else {
            return admitting.isEmpty ? .algorithmNotAccepted : .keys(admitting.map(\.key))
        }
        guard entries.contains(where: { $0.keyID == keyID }) else { return .unknownKeyID }
        let named = admitting.filter { $0.keyID == keyID }
        return named.isEmpty ? .algorithmNotAccepted : .keys(named.map(\.key))
    }
}

/// Why a key file could not be used. The message is one line, fit for the CLI.
public struct KeyLoadingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension JWTKeySet {
    /// Reads a PEM public key: RSA (2048 bits or more), EC P-256 or Ed25519, as SPKI (`BEGIN PUBLIC KEY`)
    /// or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
    public static func parsePEM(_ pem: String) throws(KeyLoadingError) -> Key {
        if let key = try? _RSA.Signing.PublicKey(pemRepresentation: pem) { return .rsa(key) }
        if let key = try? P256.Signing.PublicKey(pemRepresentation: pem) { return .p256(key) }
        if let der = pemBody(pem), let key = ed25519(fromSPKI: der) { return .ed25519(key) }
        if pem.contains("PRIVATE KEY") {
            throw KeyLoadingError("the PEM holds a private key; give the gateway the public key only")
        }
        if let der = pemBody(pem), (try? _RSA.Signing.PublicKey(unsafeDERRepresentation: der)) != nil {
            throw KeyLoadingError("RSA keys shorter than 2048 bits are refused")
        }
        throw KeyLoadingError("not a PEM public key of a supported type (RSA, EC P-256, Ed25519)")
    }

    static func pemBody(_ pem: String) -> [UInt8]? {
        let lines = pem.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
        guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") }),
            let end = lines.lastIndex(where: { $0.hasPrefix("-----END ") }), begin < end
        else { return nil }
        return Base64.decode(lines[(begin + 1)..<end].joined())
    }

    /// SubjectPublicKeyInfo of an Ed25519 key: a fixed 12-byte prefix, then the 32-byte key.
    static let ed25519SPKIPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

    static func ed25519(fromSPKI der: [UInt8]) -> Curve25519.Signing.PublicKey? {
        guard der.count == 44, Array(der.prefix(12)) == ed25519SPKIPrefix else { return nil }
        return try? Curve25519.Signing.PublicKey(rawRepresentation: der.suffix(32))
    }

    /// Reads a JWKS document (`{"keys":[...]}`): RSA (`n`, `e`), EC P-256 (`x`, `y`), OKP Ed25519 (`x`)
    /// and `oct` (`k`) keys. Keys with `use` other than `sig` are skipped; an unsupported key is an error.
    public static func parseJWKS(_ bytes: [UInt8]) throws(KeyLoadingError) -> JWTKeySet {
        let document: JSONValue
        do { document = try JSONParser.parse(bytes) } catch { throw KeyLoadingError("JWKS is not valid JSON: \(error)") }
        guard case .array(let keys)? = document.objectValue?["keys"] else {
            throw KeyLoadingError("JWKS must be an object with a \"keys\" array")
        }
        var set = JWTKeySet()
        for (index, value) in keys.enumerated() {
            guard let jwk = value.objectValue else { throw KeyLoadingError("JWKS key \(index) is not an object") }
            if let use = jwk["use"]?.stringValue, use != "sig" { continue }
            func field(_ name: String) throws(KeyLoadingError) -> [UInt8] {
                guard let text = jwk[name]?.stringValue, let bytes = Base64.decode(text) else {
                    throw KeyLoadingError("JWKS key \(index) lacks a base64url \"\(name)\"")
                }
                return bytes
            }
            let keyID = jwk["kid"]?.stringValue
            switch (jwk["kty"]?.stringValue, jwk["crv"]?.stringValue) {
            case ("RSA", _):
                let n = try field("n")
                let e = try field("e")
                guard let key = try? _RSA.Signing.PublicKey(n: n, e: e) else {
                    throw KeyLoadingError("JWKS key \(index): RSA key refused (2048 bits or more required)")
                }
                set.add(.rsa(key), keyID: keyID)
            case ("EC", "P-256"):
                guard let key = try? P256.Signing.PublicKey(rawRepresentation: try field("x") + field("y")) else {
                    throw KeyLoadingError("JWKS key \(index): invalid P-256 point")
                }
                set.add(.p256(key), keyID: keyID)
            case ("OKP", "Ed25519"):
                guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: try field("x")) else {
                    throw KeyLoadingError("JWKS key \(index): invalid Ed25519 key")
                }
                set.add(.ed25519(key), keyID: keyID)
            case ("oct", _):
                set.add(try hmacSecret(try field("k"), name: "JWKS key \(index)'s \"k\""), keyID: keyID)
            case (let kty, let crv):
                throw KeyLoadingError("JWKS key \(index): unsupported key type \(kty ?? "?")\(crv.map { " \($0)" } ?? "")")
            }
        }
        guard !set.isEmpty else { throw KeyLoadingError("JWKS holds no signing keys") }
        return set
    }
}

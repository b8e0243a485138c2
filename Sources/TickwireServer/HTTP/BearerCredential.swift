import NIOHTTP1

/// `Authorization: Bearer <credential>`, read exactly as RFC 6750 section 2.1 writes it:
/// the scheme (in any case), one space, then a non-empty b64token. Anything else carries
/// no credential: `Bearer` followed by two spaces is not an empty key.
public enum BearerCredential {
    public static func parse(_ header: String?) -> String? {
        guard let header else { return nil }
        let scheme = header.prefix(7)
        guard scheme.count == 7, scheme.lowercased() == "bearer " else { return nil }
        let credential = header.dropFirst(7)
        return isToken(credential) ? String(credential) : nil
    }

    /// Whether `text` is a b64token: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
    public static func isToken(_ text: some StringProtocol) -> Bool {
        let body = text.utf8.reversed().drop { $0 == UInt8(ascii: "=") }
        return !body.isEmpty && body.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                true
            default:
                false
            }
        }
    }
}

extension HTTPRequestHead {
    /// The credential of `Authorization: Bearer`, if the header is well-formed.
    var bearerCredential: String? { BearerCredential.parse(headers["authorization"].first) }
}

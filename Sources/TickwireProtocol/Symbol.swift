/// Price symbols: `^[A-Za-z0-9]{1,15}$` on the wire, upper-cased by the server.
public enum Symbol {
    public static let maximumLength = 15

    /// The upper-cased symbol, or nil when `text` does not match the symbol pattern.
    public static func normalize(_ text: String) -> String? {
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count <= maximumLength else { return nil }
        var upper = [UInt8]()
        upper.reserveCapacity(utf8.count)
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): upper.append(byte)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): upper.append(byte - 32)
            default: return nil
            }
        }
        return String(decoding: upper, as: UTF8.self)
    }

    /// Parses a comma-separated list such as `btc, ETH,sol` into normalized, de-duplicated symbols.
    public static func parseList(_ text: String) throws(ProtocolViolation) -> [String] {
        var result: [String] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: true) {
            let trimmed = part.trimmingWhitespace()
            guard let symbol = normalize(trimmed) else {
                throw ProtocolViolation(.invalidMessage, "invalid symbol \"\(trimmed)\"")
            }
            if !result.contains(symbol) { result.append(symbol) }
        }
        return result
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace (spaces, tabs, line ends).
    public func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

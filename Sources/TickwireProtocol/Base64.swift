/// Base64 (RFC 4648): the standard alphabet with padding (WebSocket keys, PEM bodies),
/// and the URL-safe unpadded form of JWTs and JWKs (RFC 7515 section 2).
public enum Base64 {
    static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let url = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: encode(bytes, alphabet: standard, padded: true), as: UTF8.self)
    }

    public static func encodeURL(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: encode(bytes, alphabet: url, padded: false), as: UTF8.self)
    }

    static func encode(_ bytes: some Collection<UInt8>, alphabet: [UInt8], padded: Bool) -> [UInt8] {
        let input = Array(bytes)
        var output: [UInt8] = []
        output.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= input.count {
            let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            output.append(alphabet[Int(value >> 18 & 63)])
            output.append(alphabet[Int(value >> 12 & 63)])
            output.append(alphabet[Int(value >> 6 & 63)])
            output.append(alphabet[Int(value & 63)])
            index += 3
        }
        let rest = input.count - index
        if rest > 0 {
            let value = UInt32(input[index]) << 16 | (rest == 2 ? UInt32(input[index + 1]) << 8 : 0)
            output.append(alphabet[Int(value >> 18 & 63)])
            output.append(alphabet[Int(value >> 12 & 63)])
            if rest == 2 { output.append(alphabet[Int(value >> 6 & 63)]) }
            if padded { output.append(contentsOf: Array(repeating: UInt8(ascii: "="), count: 3 - rest)) }
        }
        return output
    }

    /// Decodes standard or URL-safe base64, padded or not. Nil on any other character.
    /// Lenient on purpose: for WebSocket keys and PEM bodies, never for anything signed.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        decode(text.utf8, strict: false)
    }

    /// Decodes base64url; see `decodeURL(_:)`. For a token's parts, without copying them into strings.
    public static func decodeURL(_ utf8: Substring.UTF8View) -> [UInt8]? {
        decode(utf8, strict: true)
    }

    /// Decodes base64url exactly as RFC 7515 requires: only `A-Z a-z 0-9 - _`, no padding,
    /// no stray bits. Each byte string then has exactly one encoding, so a signed token
    /// cannot be re-encoded into a different string that still verifies.
    public static func decodeURL(_ text: some StringProtocol) -> [UInt8]? {
        decode(text.utf8, strict: true)
    }

    /// Generic callers from other modules would run unspecialised (a protocol witness per byte, on
    /// every connect's token): decode over contiguous bytes, copying only what is not.
    static func decode(_ utf8: some Collection<UInt8>, strict: Bool) -> [UInt8]? {
        if let decoded = utf8.withContiguousStorageIfAvailable({ decode(bytes: $0, strict: strict) }) { return decoded }
        return Array(utf8).withUnsafeBufferPointer { decode(bytes: $0, strict: strict) }
    }

    private static func decode(bytes utf8: UnsafeBufferPointer<UInt8>, strict: Bool) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var sawPadding = false
        for byte in utf8 {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            case UInt8(ascii: "+") where !strict: value = 62
            case UInt8(ascii: "/") where !strict: value = 63
            case UInt8(ascii: "=") where !strict:
                sawPadding = true
                continue
            default: return nil
            }
            guard !sawPadding else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(accumulator >> UInt32(bits) & 0xFF))
            }
        }
        // Leftover bits must be zero padding, and a single leftover character is never valid.
        guard bits < 6, accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return output
    }
}

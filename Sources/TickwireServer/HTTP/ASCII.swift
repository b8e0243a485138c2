/// Byte-level helpers for HTTP's case-insensitive ASCII (header names, tokens), without building strings.
enum ASCII {
    /// Whether `bytes` spell `lowercase` (lowercase ASCII) in any case. Only A-Z are folded.
    static func equalsIgnoringCase(_ bytes: some Collection<UInt8>, _ lowercase: some Collection<UInt8>) -> Bool {
        bytes.count == lowercase.count
            && zip(bytes, lowercase).allSatisfy { byte, expected in
                (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == expected
            }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
}

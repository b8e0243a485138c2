/// Validates UTF-8 incrementally, across fragment boundaries, so a text message
/// with invalid data is refused as soon as the bad byte arrives (RFC 6455 section 8.1).
///
/// Well-formed means RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
public struct UTF8Validator: Sendable {
    /// Bytes still expected to complete the current sequence.
    private var remaining: UInt8 = 0
    /// Allowed range of the next byte (narrower than 0x80...0xBF right after some lead bytes).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    public init() {}

    /// True when no sequence is open: the bytes so far form complete characters.
    public var isComplete: Bool { remaining == 0 }

    /// Feeds bytes; returns false at the first byte that cannot be part of well-formed UTF-8.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            if remaining == 0 {
                // ASCII fast path: skip runs of 8 bytes with no high bit.
                if byte < 0x80 {
                    index += 1
                    while index + 8 <= count,
                        bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
                    {
                        index += 8
                    }
                    continue
                }
                lower = 0x80
                upper = 0xBF
                switch byte {
                case 0xC2...0xDF: remaining = 1
                case 0xE0: remaining = 2; lower = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF: remaining = 2
                case 0xED: remaining = 2; upper = 0x9F
                case 0xF0: remaining = 3; lower = 0x90
                case 0xF1...0xF3: remaining = 3
                case 0xF4: remaining = 3; upper = 0x8F
                default: return false
                }
            } else {
                guard byte >= lower && byte <= upper else { return false }
                lower = 0x80
                upper = 0xBF
                remaining -= 1
            }
            index += 1
        }
        return true
    }

    public mutating func consume(_ bytes: some Sequence<UInt8>) -> Bool {
        if let result = bytes.withContiguousStorageIfAvailable({ consume(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        let copy = Array(bytes)
        return copy.withUnsafeBytes { consume($0) }
    }

    /// Whether `bytes` is one complete, well-formed UTF-8 text.
    public static func isValid(_ bytes: some Sequence<UInt8>) -> Bool {
        var validator = UTF8Validator()
        return validator.consume(bytes) && validator.isComplete
    }
}

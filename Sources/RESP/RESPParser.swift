import NIOCore

/// Why bytes from the server are not RESP. The connection that produced them cannot be trusted any further.
public struct RESPParsingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { "malformed RESP: \(reason)" }
}

/// Parses RESP2 and RESP3 incrementally and defensively.
///
/// `next(from:)` consumes one complete value, or nothing when the value has not
/// fully arrived (so truncated input waits instead of failing). Lengths, element
/// counts and nesting are bounded, arithmetic is checked, and counts sent by the
/// server are never trusted to reserve memory.
public struct RESPParser: Sendable {
    public var maximumBulkLength: Int
    public var maximumElements: Int
    public var maximumDepth: Int

    public init(maximumBulkLength: Int = 64 << 20, maximumElements: Int = 1 << 20, maximumDepth: Int = 32) {
        self.maximumBulkLength = maximumBulkLength
        self.maximumElements = maximumElements
        self.maximumDepth = maximumDepth
    }

    public func next(from buffer: inout ByteBuffer) throws(RESPParsingError) -> RESPValue? {
        let result: (RESPValue, Int)?
        do {
            result = try buffer.withUnsafeReadableBytes { bytes throws(RESPParsingError) in
                var cursor = Cursor(bytes: bytes, parser: self)
                guard let value = try cursor.value(depth: 0) else { return nil }
                return (value, cursor.index)
            }
        }
        guard let (value, consumed) = result else { return nil }
        buffer.moveReaderIndex(forwardBy: consumed)
        return value
    }

    struct Cursor {
        let bytes: UnsafeRawBufferPointer
        let parser: RESPParser
        var index = 0

        func fail(_ reason: String) -> RESPParsingError { RESPParsingError(reason: reason) }

        /// The line up to CRLF (without it), or nil when the CRLF has not arrived.
        mutating func line() throws(RESPParsingError) -> UnsafeRawBufferPointer? {
            var end = index
            while end < bytes.count {
                if bytes[end] == 0x0D {
                    guard end + 1 < bytes.count else { return nil }
                    guard bytes[end + 1] == 0x0A else { throw fail("CR without LF") }
                    let line = UnsafeRawBufferPointer(rebasing: bytes[index..<end])
                    index = end + 2
                    return line
                }
                if bytes[end] == 0x0A { throw fail("LF without CR") }
                end += 1
                if end - index > 64 * 1024 { throw fail("line longer than 64 KiB") }
            }
            return nil
        }

        func text(_ line: UnsafeRawBufferPointer) -> String {
            String(decoding: line, as: UTF8.self)
        }

        func integer(_ line: UnsafeRawBufferPointer) throws(RESPParsingError) -> Int64 {
            guard !line.isEmpty, line.count <= 20 else { throw fail("bad integer") }
            var negative = false
            var start = 0
            if line[0] == UInt8(ascii: "-") { negative = true; start = 1 } else if line[0] == UInt8(ascii: "+") { start = 1 }
            guard start < line.count else { throw fail("bad integer") }
            var value: Int64 = 0
            for position in start..<line.count {
                let byte = line[position]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw fail("bad integer") }
                let (multiplied, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (added, overflow2) = multiplied.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else { throw fail("integer overflow") }
                value = added
            }
            return negative ? -value : value
        }

        /// Reads `length` bytes and the CRLF after them; nil when not all there yet.
        mutating func payload(length: Int) throws(RESPParsingError) -> UnsafeRawBufferPointer? {
            let (end, overflow) = index.addingReportingOverflow(length)
            guard !overflow else { throw fail("length overflow") }
            guard end + 2 <= bytes.count else { return nil }
            guard bytes[end] == 0x0D, bytes[end + 1] == 0x0A else { throw fail("payload not followed by CRLF") }
            let payload = UnsafeRawBufferPointer(rebasing: bytes[index..<end])
            index = end + 2
            return payload
        }

        func count(_ line: UnsafeRawBufferPointer, allowNull: Bool) throws(RESPParsingError) -> Int? {
            let value = try integer(line)
            if value == -1 && allowNull { return nil }
            guard value >= 0 else { throw fail("negative length") }
            return Int(value)
        }

        mutating func elements(_ count: Int, depth: Int) throws(RESPParsingError) -> [RESPValue]? {
            guard count <= parser.maximumElements else { throw fail("aggregate of \(count) elements") }
            var values: [RESPValue] = []
            values.reserveCapacity(min(count, 64))
            for _ in 0..<count {
                guard let value = try value(depth: depth + 1) else { return nil }
                values.append(value)
            }
            return values
        }

        mutating func value(depth: Int) throws(RESPParsingError) -> RESPValue? {
            guard depth <= parser.maximumDepth else { throw fail("nested deeper than \(parser.maximumDepth)") }
            guard index < bytes.count else { return nil }
            let type = bytes[index]
            index += 1
            guard let line = try line() else { return nil }
            switch type {
            case UInt8(ascii: "+"):
                return .simpleString(text(line))
            case UInt8(ascii: "-"):
                return .error(text(line))
            case UInt8(ascii: ":"):
                return .integer(try integer(line))
            case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
                guard let length = try count(line, allowNull: type == UInt8(ascii: "$")) else { return .null }
                guard length <= parser.maximumBulkLength else { throw fail("bulk string of \(length) bytes") }
                guard let payload = try payload(length: length) else { return nil }
                switch type {
                case UInt8(ascii: "$"): return .bulkString(ByteBuffer(bytes: payload))
                case UInt8(ascii: "!"): return .error(text(payload))
                default:
                    guard payload.count >= 4, payload[3] == UInt8(ascii: ":") else { throw fail("verbatim string without format") }
                    return .verbatimString(text(UnsafeRawBufferPointer(rebasing: payload[4...])))
                }
            case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
                guard let count = try count(line, allowNull: type == UInt8(ascii: "*")) else { return .null }
                guard let values = try elements(count, depth: depth) else { return nil }
                switch type {
                case UInt8(ascii: "*"): return .array(values)
                case UInt8(ascii: "~"): return .set(values)
                default: return .push(values)
                }
            case UInt8(ascii: "%"), UInt8(ascii: "|"):
                guard let count = try count(line, allowNull: false) else { return .null }
                let (doubled, overflow) = count.multipliedReportingOverflow(by: 2)
                guard !overflow else { throw fail("map too large") }
                guard let values = try elements(doubled, depth: depth) else { return nil }
                let pairs = stride(from: 0, to: values.count, by: 2).map { RESPPair(key: values[$0], value: values[$0 + 1]) }
                if type == UInt8(ascii: "|") {
                    // Attributes describe the value that follows; Tickwire has no use for them.
                    return try value(depth: depth)
                }
                return .map(pairs)
            case UInt8(ascii: "_"):
                guard line.isEmpty else { throw fail("null with content") }
                return .null
            case UInt8(ascii: "#"):
                guard line.count == 1 else { throw fail("bad boolean") }
                switch line[0] {
                case UInt8(ascii: "t"): return .boolean(true)
                case UInt8(ascii: "f"): return .boolean(false)
                default: throw fail("bad boolean")
                }
            case UInt8(ascii: ","):
                let literal = text(line)
                switch literal.lowercased() {
                case "inf", "+inf": return .double(.infinity)
                case "-inf": return .double(-.infinity)
                case "nan": return .double(.nan)
                default:
                    guard let value = Double(literal) else { throw fail("bad double") }
                    return .double(value)
                }
            case UInt8(ascii: "("):
                guard !line.isEmpty, line.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }) else {
                    throw fail("bad big number")
                }
                return .bigNumber(text(line))
            default:
                throw fail("unknown type byte 0x\(String(type, radix: 16))")
            }
        }
    }
}

import NIOCore

/// A value of the Redis serialization protocol, RESP2 and RESP3.
public enum RESPValue: Sendable, Equatable, CustomStringConvertible {
    case simpleString(String)
    /// A simple (`-`) or bulk (`!`) error.
    case error(String)
    case integer(Int64)
    case bulkString(ByteBuffer)
    /// RESP3 `_`, and RESP2's null bulk string and null array.
    case null
    case boolean(Bool)
    case double(Double)
    case bigNumber(String)
    /// RESP3 `=`: the text without its three-letter format prefix.
    case verbatimString(String)
    case array([RESPValue])
    case map([RESPPair])
    case set([RESPValue])
    /// RESP3 out-of-band data (pub/sub messages).
    case push([RESPValue])

    /// The value as text when it is a simple, bulk or verbatim string.
    public var string: String? {
        switch self {
        case .simpleString(let text), .verbatimString(let text): text
        case .bulkString(let buffer): String(buffer: buffer)
        default: nil
        }
    }

    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString, .simpleString: string.flatMap { Int64($0) }
        default: nil
        }
    }

    /// The elements of an array, set or push.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let values), .set(let values), .push(let values): values
        default: nil
        }
    }

    /// A map as pairs; RESP2 returns maps as flat arrays of alternating keys and values.
    public var pairs: [RESPPair]? {
        switch self {
        case .map(let pairs): return pairs
        case .array(let values) where values.count % 2 == 0:
            return stride(from: 0, to: values.count, by: 2).map { RESPPair(key: values[$0], value: values[$0 + 1]) }
        default: return nil
        }
    }

    public var isNull: Bool { self == .null }

    public var description: String {
        switch self {
        case .simpleString(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulkString(let buffer): "$\"\(String(buffer: buffer).prefix(80))\""
        case .null: "null"
        case .boolean(let value): "#\(value)"
        case .double(let value): ",\(value)"
        case .bigNumber(let text): "(\(text)"
        case .verbatimString(let text): "=\(text.prefix(80))"
        case .array(let values): "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .map(let pairs): "{" + pairs.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .set(let values): "~[" + values.map(\.description).joined(separator: ", ") + "]"
        case .push(let values): ">[" + values.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

public struct RESPPair: Sendable, Equatable {
    public var key: RESPValue
    public var value: RESPValue

    public init(key: RESPValue, value: RESPValue) {
        self.key = key
        self.value = value
    }
}

extension RESPValue {
    /// A bulk string from text (tests and scripts).
    public static func bulk(_ text: String) -> RESPValue {
        .bulkString(ByteBuffer(string: text))
    }
}

/// The data of a `price_update`, and one element of a `price_batch`.
public struct PriceUpdate: Sendable, Equatable {
    public var symbol: String
    /// Decimal string, plain notation.
    public var priceUSD: String
    /// Percent as a decimal string (`"2.5"`, `"-1.2"`).
    public var change24h: String
    /// Decimal string; nil when the source does not report volume.
    public var volume24h: String?
    /// When the source priced it.
    public var timestamp: Timestamp
    /// Which source produced it (`simulated`, `coingecko`, ...).
    public var source: String?
    /// True when the source has not refreshed this price for longer than the feed's staleness limit.
    public var stale: Bool
    /// Fields this version does not know, passed through untouched (a benchmark's send stamp, say).
    public var extra: JSONObject
    /// When a broker publisher sent it (`published_us`, wall-clock microseconds). Gateways use it to
    /// measure broker lag; it is part of the broker payload only, never of what clients receive.
    public var publishedAtMicroseconds: Int64?

    public init(
        symbol: String, priceUSD: String, change24h: String, volume24h: String?, timestamp: Timestamp,
        source: String? = nil, stale: Bool = false, extra: JSONObject = JSONObject()
    ) {
        self.symbol = symbol
        self.priceUSD = priceUSD
        self.change24h = change24h
        self.volume24h = volume24h
        self.timestamp = timestamp
        self.source = source
        self.stale = stale
        self.extra = extra
        self.publishedAtMicroseconds = nil
    }

    static let knownKeys: Set<String> = [
        "symbol", "price_usd", "price_change_24h", "volume_24h", "timestamp", "source", "stale", "published_us",
    ]

    /// Reads a price published by a feed. `receivedAt` stands in for a missing `timestamp`.
    public init(json object: JSONObject, receivedAt: Timestamp) throws(ProtocolViolation) {
        guard case .string(let rawSymbol)? = object["symbol"], let symbol = Symbol.normalize(rawSymbol) else {
            throw ProtocolViolation(.invalidMessage, "symbol must be 1 to 15 letters or digits", details: ["field": "symbol"])
        }
        func decimal(_ key: String, required: Bool) throws(ProtocolViolation) -> String? {
            guard let value = object[key], value != .null else {
                if required { throw ProtocolViolation(.invalidMessage, "\(key) is required", details: ["field": .string(key)]) }
                return nil
            }
            guard case .string(let text) = value, DecimalString.isValid(text) else {
                throw ProtocolViolation(
                    .invalidMessage, "\(key) must be a decimal string such as \"50000.00\"", details: ["field": .string(key)])
            }
            return text
        }
        self.symbol = symbol
        self.priceUSD = try decimal("price_usd", required: true)!
        self.change24h = try decimal("price_change_24h", required: false) ?? "0"
        self.volume24h = try decimal("volume_24h", required: false)
        if let value = object["timestamp"], value != .null {
            guard case .string(let text) = value, let timestamp = Timestamp(rfc3339: text) else {
                throw ProtocolViolation(.invalidMessage, "timestamp must be an RFC 3339 date-time", details: ["field": "timestamp"])
            }
            self.timestamp = timestamp
        } else {
            self.timestamp = receivedAt
        }
        switch object["source"] {
        case nil, .null?: self.source = nil
        case .string(let source)?: self.source = source
        default: throw ProtocolViolation(.invalidMessage, "source must be a string", details: ["field": "source"])
        }
        switch object["stale"] {
        case nil, .null?: self.stale = false
        case .bool(let stale)?: self.stale = stale
        default: throw ProtocolViolation(.invalidMessage, "stale must be a boolean", details: ["field": "stale"])
        }
        self.extra = JSONObject(object.members.filter { !Self.knownKeys.contains($0.key) })
        self.publishedAtMicroseconds = object["published_us"]?.integerValue
    }

    /// Writes the data object clients receive, known fields first in a fixed order.
    public func write(to writer: inout JSONWriter) {
        write(to: &writer, publishedAt: nil)
    }

    private func write(to writer: inout JSONWriter, publishedAt: Int64?) {
        writer.raw("{\"symbol\":")
        writer.string(symbol)
        writer.raw(",\"price_usd\":")
        writer.string(priceUSD)
        writer.raw(",\"price_change_24h\":")
        writer.string(change24h)
        if let volume24h {
            writer.raw(",\"volume_24h\":")
            writer.string(volume24h)
        }
        writer.raw(",\"timestamp\":\"")
        timestamp.appendRFC3339(to: &writer.bytes)
        writer.raw("\"")
        if let source {
            writer.raw(",\"source\":")
            writer.string(source)
        }
        writer.raw(",\"stale\":")
        writer.bool(stale)
        for member in extra.members {
            writer.comma()
            writer.key(member.key)
            writer.value(member.value)
        }
        if let publishedAt {
            writer.raw(",\"published_us\":")
            writer.integer(publishedAt)
        }
        writer.raw("}")
    }

    /// The data object as clients see it.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter(capacity: 192)
        write(to: &writer)
        return writer.bytes
    }

    /// The broker payload (`prices:{SYMBOL}`, `prices:latest`): the client view plus `published_us`.
    public func brokerPayload(publishedAtMicroseconds: Int64) -> [UInt8] {
        var writer = JSONWriter(capacity: 224)
        write(to: &writer, publishedAt: publishedAtMicroseconds)
        return writer.bytes
    }
}

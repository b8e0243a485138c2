/// The three events of the notifications channel.
public enum NotificationKind: String, Sendable, CaseIterable {
    case transactionUpdate = "transaction_update"
    case balanceUpdate = "balance_update"
    case notification = "notification"

    /// Checks `data` against this event's schema (PROTOCOL.md section 4). Extra fields pass.
    /// The violation's `details.field` names the first offending field.
    public func validate(_ data: JSONObject) throws(ProtocolViolation) {
        for field in schema {
            let value = data[field.name]
            guard let value, value != .null else {
                throw ProtocolViolation(.invalidMessage, "data.\(field.name) is required", details: ["field": .string(field.name)])
            }
            if let problem = field.type.problem(with: value) {
                throw ProtocolViolation(
                    .invalidMessage, "data.\(field.name) must be \(problem)", details: ["field": .string(field.name)])
            }
        }
    }

    struct Field {
        var name: String
        var type: FieldType
    }

    enum FieldType {
        case text
        case decimal
        case symbol
        case count
        case oneOf([String])

        func problem(with value: JSONValue) -> String? {
            switch self {
            case .text:
                guard case .string(let text) = value, !text.isEmpty else { return "a non-empty string" }
            case .decimal:
                guard case .string(let text) = value, DecimalString.isValid(text) else {
                    return "a decimal string such as \"1.5\""
                }
            case .symbol:
                guard case .string(let text) = value, Symbol.normalize(text) != nil else {
                    return "a symbol of 1 to 15 letters or digits"
                }
            case .count:
                guard let count = value.integerValue, count >= 0 else { return "a non-negative integer" }
            case .oneOf(let allowed):
                guard case .string(let text) = value, allowed.contains(text) else {
                    return "one of " + allowed.map { "\"\($0)\"" }.joined(separator: ", ")
                }
            }
            return nil
        }
    }

    var schema: [Field] {
        switch self {
        case .transactionUpdate:
            [
                Field(name: "transaction_id", type: .text), Field(name: "type", type: .text),
                Field(name: "amount", type: .decimal), Field(name: "symbol", type: .symbol),
                Field(name: "status", type: .text), Field(name: "confirmations", type: .count),
                Field(name: "from_address", type: .text), Field(name: "tx_hash", type: .text),
            ]
        case .balanceUpdate:
            [
                Field(name: "wallet_id", type: .text), Field(name: "balance", type: .decimal),
                Field(name: "balance_usd", type: .decimal), Field(name: "symbol", type: .symbol),
            ]
        case .notification:
            [
                Field(name: "notification_id", type: .text), Field(name: "type", type: .text),
                Field(name: "title", type: .text), Field(name: "message", type: .text),
                Field(name: "priority", type: .oneOf(["low", "normal", "high", "critical"])),
            ]
        }
    }
}

/// A stored notification event: what `notifications:{user_id}` carries and what replay returns.
public struct NotificationEnvelope: Sendable, Equatable {
    public var id: StreamID
    public var kind: NotificationKind
    public var data: JSONObject
    /// When it was published.
    public var timestamp: Timestamp

    public init(id: StreamID, kind: NotificationKind, data: JSONObject, timestamp: Timestamp) {
        self.id = id
        self.kind = kind
        self.data = data
        self.timestamp = timestamp
    }

    /// `{"id","event","data","timestamp"}`, the Pub/Sub and stream form.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter(capacity: 256)
        writer.raw("{\"id\":")
        writer.string(id.description)
        writer.raw(",\"event\":")
        writer.string(kind.rawValue)
        writer.raw(",\"data\":")
        writer.object(data)
        writer.raw(",\"timestamp\":\"")
        timestamp.appendRFC3339(to: &writer.bytes)
        writer.raw("\"}")
        return writer.bytes
    }

    public init(json object: JSONObject) throws(ProtocolViolation) {
        guard case .string(let idText)? = object["id"], let id = StreamID(idText) else {
            throw ProtocolViolation(.invalidMessage, "id must be a stream id", details: ["field": "id"])
        }
        guard case .string(let event)? = object["event"], let kind = NotificationKind(rawValue: event) else {
            throw ProtocolViolation(.invalidMessage, "event must be a notification event", details: ["field": "event"])
        }
        guard case .object(let data)? = object["data"] else {
            throw ProtocolViolation(.invalidMessage, "data must be an object", details: ["field": "data"])
        }
        var timestamp = Timestamp(millisecondsSinceEpoch: Int64(id.milliseconds))
        if case .string(let text)? = object["timestamp"], let parsed = Timestamp(rfc3339: text) {
            timestamp = parsed
        }
        self.init(id: id, kind: kind, data: data, timestamp: timestamp)
    }
}

/// A client's `request_id`: a string of at most 64 characters or an integer,
/// copied into `data.request_id` of the direct reply.
public enum RequestID: Sendable, Hashable {
    case string(String)
    case integer(Int64)

    public static let maximumLength = 64

    /// Reads `request_id` from a client frame. Absent is nil; a present but wrong value is a violation.
    static func read(from object: JSONObject) throws(ProtocolViolation) -> RequestID? {
        guard let value = object["request_id"] else { return nil }
        switch value {
        case .string(let text):
            guard text.count <= maximumLength else {
                throw ProtocolViolation(.invalidMessage, "request_id must be at most 64 characters")
            }
            return .string(text)
        case .number:
            guard let integer = value.integerValue else {
                throw ProtocolViolation(.invalidMessage, "request_id must be a string or an integer")
            }
            return .integer(integer)
        default:
            throw ProtocolViolation(.invalidMessage, "request_id must be a string or an integer")
        }
    }

    public var jsonValue: JSONValue {
        switch self {
        case .string(let text): .string(text)
        case .integer(let value): .number(String(value))
        }
    }
}

/// The `code` of an `error` event (PROTOCOL.md section 4).
public enum ErrorCode: String, Sendable, CaseIterable {
    case missingToken = "MISSING_TOKEN"
    case invalidToken = "INVALID_TOKEN"
    case tokenExpired = "TOKEN_EXPIRED"
    case forbidden = "FORBIDDEN"
    case invalidMessage = "INVALID_MESSAGE"
    case unknownAction = "UNKNOWN_ACTION"
    case unknownChannel = "UNKNOWN_CHANNEL"
    case unknownSymbol = "UNKNOWN_SYMBOL"
    case subscriptionLimit = "SUBSCRIPTION_LIMIT"
    case rateLimited = "RATE_LIMITED"
    case messageTooLarge = "MESSAGE_TOO_LARGE"
    case connectionLimit = "CONNECTION_LIMIT"
    case internalError = "INTERNAL_ERROR"
}

/// WebSocket close codes the gateway uses (PROTOCOL.md section 8, plus RFC 6455's protocol errors).
public struct CloseCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public static let normal = CloseCode(rawValue: 1000)
    public static let goingAway = CloseCode(rawValue: 1001)
    public static let protocolError = CloseCode(rawValue: 1002)
    public static let unacceptableData = CloseCode(rawValue: 1003)
    /// Never sent: what a close frame without a status code is counted as (RFC 6455 section 7.1.5).
    public static let noStatusReceived = CloseCode(rawValue: 1005)
    /// Never sent: a connection that ended without a close frame.
    public static let abnormalClosure = CloseCode(rawValue: 1006)
    public static let invalidPayload = CloseCode(rawValue: 1007)
    public static let policyViolation = CloseCode(rawValue: 1008)
    public static let messageTooBig = CloseCode(rawValue: 1009)
    public static let internalError = CloseCode(rawValue: 1011)
    public static let tryAgainLater = CloseCode(rawValue: 1013)
    public static let authenticationFailed = CloseCode(rawValue: 4001)
    public static let heartbeatTimeout = CloseCode(rawValue: 4008)
    public static let tooSlow = CloseCode(rawValue: 4009)

    public var description: String { String(rawValue) }

    /// Whether a peer may send this code in a close frame (RFC 6455 section 7.4).
    public var isValidOnTheWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1011: true
        case 1012...1014: true  // registered with IANA since RFC 6455: restart, try again later, bad gateway
        case 3000...4999: true
        default: false
        }
    }
}

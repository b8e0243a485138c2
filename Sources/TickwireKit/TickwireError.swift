import TickwireProtocol

/// An error the app should know about: every `error` frame the server sends, with the
/// `request_id` it answers, and the client's own (`source == .client`).
public struct TickwireError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Source: String, Sendable {
        case server
        case client
    }

    /// The protocol's code (`UNKNOWN_SYMBOL`, `RATE_LIMITED`, ...) or the client's own:
    /// `TOKEN_PROVIDER_FAILED`, `CONNECTION_FAILED`, `INVALID_FRAME`.
    public var code: String
    public var message: String
    public var details: JSONObject
    /// The `request_id` of the client frame this answers (the client numbers its frames).
    public var requestID: RequestID?
    public var source: Source

    public init(code: String, message: String, details: JSONObject = JSONObject(), requestID: RequestID? = nil, source: Source) {
        self.code = code
        self.message = message
        self.details = details
        self.requestID = requestID
        self.source = source
    }

    init(_ violation: ProtocolViolation, requestID: RequestID?) {
        self.init(
            code: violation.code.rawValue, message: violation.message, details: violation.details, requestID: requestID,
            source: .server)
    }

    static func client(_ code: String, _ message: String) -> TickwireError {
        TickwireError(code: code, message: message, source: .client)
    }

    public var description: String { "\(code): \(message)" }
}

/// The server could not replay everything after `since`: events may be missing. Reload the user's
/// state from the wallet's own API.
public struct NotificationGap: Sendable, Equatable {
    public var userID: String
    /// The last id the client had; events after it may be lost.
    public var since: String

    public init(userID: String, since: String) {
        self.userID = userID
        self.since = since
    }
}

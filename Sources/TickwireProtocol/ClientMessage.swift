/// What a client asks for (PROTOCOL.md section 3).
public enum ClientAction: Sendable, Equatable {
    /// Symbols are validated, upper-cased and de-duplicated; 1 to 50 of them.
    case subscribePrices(symbols: [String])
    /// An empty list means every symbol of the connection.
    case unsubscribePrices(symbols: [String])
    case subscribeNotifications(userID: String, since: StreamID?)
    case unsubscribeNotifications(userID: String)
    case ping
    case auth(token: String)

    /// The action's name in metrics: `subscribe`, `unsubscribe`, `ping` or `auth`.
    public var name: String {
        switch self {
        case .subscribePrices, .subscribeNotifications: "subscribe"
        case .unsubscribePrices, .unsubscribeNotifications: "unsubscribe"
        case .ping: "ping"
        case .auth: "auth"
        }
    }

    /// The kind used for rate limiting.
    public var isSubscriptionChange: Bool {
        switch self {
        case .subscribePrices, .unsubscribePrices, .subscribeNotifications, .unsubscribeNotifications: true
        case .ping, .auth: false
        }
    }
}

/// A validated client frame.
public struct ClientMessage: Sendable, Equatable {
    public var action: ClientAction
    public var requestID: RequestID?

    public init(action: ClientAction, requestID: RequestID? = nil) {
        self.action = action
        self.requestID = requestID
    }
}

/// A client frame that was refused, with the request id to echo when the frame carried a valid one.
public struct RejectedClientMessage: Error, Sendable, Equatable {
    public var violation: ProtocolViolation
    public var requestID: RequestID?
}

extension ClientMessage {
    public static let maximumSymbolsPerMessage = 50
    public static let maximumUserIDLength = 128

    /// Parses and validates one text frame.
    public static func parse(_ bytes: some Collection<UInt8>) -> Result<ClientMessage, RejectedClientMessage> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes, maxDepth: 16)
        } catch {
            return .failure(RejectedClientMessage(
                violation: ProtocolViolation(.invalidMessage, "frame is not valid JSON: \(error)"), requestID: nil))
        }
        guard case .object(let object) = value else {
            return .failure(RejectedClientMessage(
                violation: ProtocolViolation(.invalidMessage, "frame must be a JSON object"), requestID: nil))
        }
        let requestID: RequestID?
        do {
            requestID = try RequestID.read(from: object)
        } catch {
            return .failure(RejectedClientMessage(violation: error, requestID: nil))
        }
        do {
            return .success(ClientMessage(action: try parseAction(object), requestID: requestID))
        } catch {
            return .failure(RejectedClientMessage(violation: error, requestID: requestID))
        }
    }

    static func parseAction(_ object: JSONObject) throws(ProtocolViolation) -> ClientAction {
        guard let actionValue = object["action"] else {
            throw ProtocolViolation(.invalidMessage, "action is required")
        }
        guard case .string(let action) = actionValue else {
            throw ProtocolViolation(.invalidMessage, "action must be a string")
        }
        switch action {
        case "subscribe", "unsubscribe":
            let subscribing = action == "subscribe"
            guard let channelValue = object["channel"] else {
                throw ProtocolViolation(.invalidMessage, "channel is required")
            }
            guard case .string(let channel) = channelValue else {
                throw ProtocolViolation(.invalidMessage, "channel must be a string")
            }
            switch channel {
            case "prices":
                let symbols = try parseSymbols(object["symbols"], required: subscribing)
                return subscribing ? .subscribePrices(symbols: symbols) : .unsubscribePrices(symbols: symbols)
            case "notifications":
                let userID = try parseUserID(object["user_id"])
                if subscribing {
                    return .subscribeNotifications(userID: userID, since: try parseSince(object["since"]))
                }
                return .unsubscribeNotifications(userID: userID)
            default:
                throw ProtocolViolation(
                    .unknownChannel, "unknown channel \"\(channel)\"", details: ["channel": .string(channel)])
            }
        case "ping":
            return .ping
        case "auth":
            guard case .string(let token)? = object["token"], !token.isEmpty else {
                throw ProtocolViolation(.invalidMessage, "token must be a non-empty string")
            }
            return .auth(token: token)
        default:
            throw ProtocolViolation(.unknownAction, "unknown action \"\(action)\"", details: ["action": .string(action)])
        }
    }

    static func parseSymbols(_ value: JSONValue?, required: Bool) throws(ProtocolViolation) -> [String] {
        guard let value, value != .null else {
            if required { throw ProtocolViolation(.invalidMessage, "symbols is required") }
            return []
        }
        guard case .array(let elements) = value else {
            throw ProtocolViolation(.invalidMessage, "symbols must be an array of strings")
        }
        if required && elements.isEmpty {
            throw ProtocolViolation(.invalidMessage, "symbols must hold 1 to \(maximumSymbolsPerMessage) symbols")
        }
        guard elements.count <= maximumSymbolsPerMessage else {
            throw ProtocolViolation(
                .invalidMessage, "symbols must hold 1 to \(maximumSymbolsPerMessage) symbols",
                details: ["max": .number(String(maximumSymbolsPerMessage))])
        }
        var symbols: [String] = []
        symbols.reserveCapacity(elements.count)
        for element in elements {
            guard case .string(let text) = element else {
                throw ProtocolViolation(.invalidMessage, "symbols must be an array of strings")
            }
            guard let symbol = Symbol.normalize(text) else {
                throw ProtocolViolation(
                    .invalidMessage, "invalid symbol \"\(text)\": expected 1 to 15 letters or digits",
                    details: ["symbol": .string(text)])
            }
            if !symbols.contains(symbol) { symbols.append(symbol) }
        }
        return symbols
    }

    static func parseUserID(_ value: JSONValue?) throws(ProtocolViolation) -> String {
        guard case .string(let userID)? = value else {
            throw ProtocolViolation(.invalidMessage, "user_id must be a string")
        }
        guard !userID.isEmpty, userID.count <= maximumUserIDLength else {
            throw ProtocolViolation(.invalidMessage, "user_id must be 1 to \(maximumUserIDLength) characters")
        }
        return userID
    }

    static func parseSince(_ value: JSONValue?) throws(ProtocolViolation) -> StreamID? {
        guard let value, value != .null else { return nil }
        guard case .string(let text) = value else {
            throw ProtocolViolation(.invalidMessage, "since must be a string")
        }
        guard let id = StreamID(text) else {
            throw ProtocolViolation(.invalidMessage, "since is not an event id this server issued")
        }
        return id
    }
}

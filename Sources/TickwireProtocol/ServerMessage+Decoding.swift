/// Reading server frames: what a client SDK and the load generator do with what a gateway sends.
extension ServerMessage {
    /// One decoded frame: the message and the envelope's `timestamp` (when the server built it).
    public struct Frame: Sendable, Equatable {
        public var message: ServerMessage
        public var sentAt: Timestamp

        public init(message: ServerMessage, sentAt: Timestamp) {
            self.message = message
            self.sentAt = sentAt
        }
    }

    /// Decodes one text frame. Returns nil for an event this version does not know (a newer
    /// server's extension: clients ignore it), and throws for a frame that is not a server frame
    /// of a known event with its required fields.
    public static func decode(_ bytes: some Collection<UInt8>) throws(ProtocolViolation) -> Frame? {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw ProtocolViolation(.invalidMessage, "frame is not valid JSON: \(error)")
        }
        guard case .object(let object) = value else { throw ProtocolViolation(.invalidMessage, "frame must be a JSON object") }
        guard case .string(let event)? = object["event"] else { throw ProtocolViolation(.invalidMessage, "event must be a string") }
        guard case .string(let stamp)? = object["timestamp"], let sentAt = Timestamp(rfc3339: stamp) else {
            throw ProtocolViolation(.invalidMessage, "timestamp must be an RFC 3339 date-time")
        }
        guard case .object(let data)? = object["data"] else { throw ProtocolViolation(.invalidMessage, "data must be an object") }
        let requestID = try? RequestID.read(from: data)
        let message: ServerMessage
        switch event {
        case "connected":
            message = .connected(
                Connected(
                    connectionID: try data.string("connection_id"), userID: try data.string("user_id"),
                    heartbeatIntervalMilliseconds: Int(data["heartbeat_interval_ms"]?.integerValue ?? 30_000),
                    heartbeatTimeoutMilliseconds: Int(data["heartbeat_timeout_ms"]?.integerValue ?? 60_000),
                    expiresAt: data.timestamp("expires_at")))
        case "price_update":
            message = .priceUpdate(try PriceUpdate(json: data, receivedAt: sentAt))
        case "price_batch":
            guard case .array(let elements)? = data["prices"] else {
                throw ProtocolViolation(.invalidMessage, "data.prices must be an array")
            }
            var prices: [PriceUpdate] = []
            prices.reserveCapacity(elements.count)
            for element in elements {
                guard case .object(let price) = element else {
                    throw ProtocolViolation(.invalidMessage, "data.prices must hold objects")
                }
                prices.append(try PriceUpdate(json: price, receivedAt: sentAt))
            }
            message = .priceBatch(prices)
        case "transaction_update", "balance_update", "notification":
            message = .notification(try NotificationEnvelope(json: object))
        case "pong":
            message = .pong(requestID: requestID)
        case "subscribed", "unsubscribed":
            let subscribed = event == "subscribed"
            switch try data.string("channel") {
            case "prices":
                let symbols = (data["symbols"]?.arrayValue ?? []).compactMap(\.stringValue)
                message = subscribed
                    ? .subscribedPrices(symbols: symbols, requestID: requestID)
                    : .unsubscribedPrices(symbols: symbols, requestID: requestID)
            case "notifications":
                let userID = try data.string("user_id")
                message = subscribed
                    ? .subscribedNotifications(
                        userID: userID, recovered: data["recovered"]?.boolValue ?? false, requestID: requestID)
                    : .unsubscribedNotifications(userID: userID, requestID: requestID)
            default:
                return nil
            }
        case "authenticated":
            message = .authenticated(userID: try data.string("user_id"), expiresAt: data.timestamp("expires_at"), requestID: requestID)
        case "error":
            // A code this version does not know still reaches the app, as an internal error naming it.
            let codeText = try data.string("code")
            let code = ErrorCode(rawValue: codeText) ?? .internalError
            var details = data["details"]?.objectValue ?? JSONObject()
            if ErrorCode(rawValue: codeText) == nil { details.members.append(.init(key: "code", value: .string(codeText))) }
            message = .error(ProtocolViolation(code, data["message"]?.stringValue ?? codeText, details: details), requestID: requestID)
        default:
            return nil
        }
        return Frame(message: message, sentAt: sentAt)
    }
}

extension JSONObject {
    fileprivate func string(_ key: String) throws(ProtocolViolation) -> String {
        guard case .string(let text)? = self[key] else {
            throw ProtocolViolation(.invalidMessage, "data.\(key) must be a string", details: ["field": .string(key)])
        }
        return text
    }

    fileprivate func timestamp(_ key: String) -> Timestamp? {
        guard case .string(let text)? = self[key] else { return nil }
        return Timestamp(rfc3339: text)
    }
}

/// Every frame the server sends (PROTOCOL.md section 4), encoded as
/// `{"event":..., ["id":...,] "data":{...}, "timestamp":...}`.
public enum ServerMessage: Sendable, Equatable {
    public struct Connected: Sendable, Equatable {
        public var connectionID: String
        public var userID: String
        public var heartbeatIntervalMilliseconds: Int
        public var heartbeatTimeoutMilliseconds: Int
        public var expiresAt: Timestamp?

        public init(
            connectionID: String, userID: String, heartbeatIntervalMilliseconds: Int,
            heartbeatTimeoutMilliseconds: Int, expiresAt: Timestamp?
        ) {
            self.connectionID = connectionID
            self.userID = userID
            self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
            self.heartbeatTimeoutMilliseconds = heartbeatTimeoutMilliseconds
            self.expiresAt = expiresAt
        }
    }

    case connected(Connected)
    case priceUpdate(PriceUpdate)
    case priceBatch([PriceUpdate])
    case notification(NotificationEnvelope)
    case pong(requestID: RequestID?)
    case subscribedPrices(symbols: [String], requestID: RequestID?)
    case subscribedNotifications(userID: String, recovered: Bool, requestID: RequestID?)
    case unsubscribedPrices(symbols: [String], requestID: RequestID?)
    case unsubscribedNotifications(userID: String, requestID: RequestID?)
    case authenticated(userID: String, expiresAt: Timestamp?, requestID: RequestID?)
    case error(ProtocolViolation, requestID: RequestID?)

    public var eventName: String {
        switch self {
        case .connected: "connected"
        case .priceUpdate: "price_update"
        case .priceBatch: "price_batch"
        case .notification(let envelope): envelope.kind.rawValue
        case .pong: "pong"
        case .subscribedPrices, .subscribedNotifications: "subscribed"
        case .unsubscribedPrices, .unsubscribedNotifications: "unsubscribed"
        case .authenticated: "authenticated"
        case .error: "error"
        }
    }

    /// The frame's JSON text, stamped with `sentAt` (the envelope's `timestamp`; also `server_time` where present).
    public func encode(sentAt: Timestamp) -> [UInt8] {
        var writer = JSONWriter(capacity: 256)
        encode(into: &writer, sentAt: sentAt)
        return writer.bytes
    }

    public func encode(into writer: inout JSONWriter, sentAt: Timestamp) {
        writer.raw("{\"event\":")
        writer.string(eventName)
        if case .notification(let envelope) = self {
            writer.raw(",\"id\":")
            writer.string(envelope.id.description)
        }
        writer.raw(",\"data\":")
        writeData(into: &writer, sentAt: sentAt)
        writer.raw(",\"timestamp\":")
        writeTimestamp(sentAt, into: &writer)
        writer.raw("}")
    }

    private func writeTimestamp(_ timestamp: Timestamp, into writer: inout JSONWriter) {
        writer.raw("\"")
        timestamp.appendRFC3339(to: &writer.bytes)
        writer.raw("\"")
    }

    private func writeRequestID(_ requestID: RequestID?, into writer: inout JSONWriter) {
        guard let requestID else { return }
        writer.raw(",\"request_id\":")
        writer.value(requestID.jsonValue)
    }

    private func writeSymbols(_ symbols: [String], into writer: inout JSONWriter) {
        writer.raw("[")
        for (index, symbol) in symbols.enumerated() {
            if index > 0 { writer.comma() }
            writer.string(symbol)
        }
        writer.raw("]")
    }

    private func writeData(into writer: inout JSONWriter, sentAt: Timestamp) {
        switch self {
        case .connected(let connected):
            writer.raw("{\"connection_id\":")
            writer.string(connected.connectionID)
            writer.raw(",\"server_time\":")
            writeTimestamp(sentAt, into: &writer)
            writer.raw(",\"user_id\":")
            writer.string(connected.userID)
            writer.raw(",\"heartbeat_interval_ms\":")
            writer.integer(connected.heartbeatIntervalMilliseconds)
            writer.raw(",\"heartbeat_timeout_ms\":")
            writer.integer(connected.heartbeatTimeoutMilliseconds)
            if let expiresAt = connected.expiresAt {
                writer.raw(",\"expires_at\":")
                writeTimestamp(expiresAt, into: &writer)
            }
            writer.raw("}")
        case .priceUpdate(let price):
            price.write(to: &writer)
        case .priceBatch(let prices):
            writer.raw("{\"prices\":[")
            for (index, price) in prices.enumerated() {
                if index > 0 { writer.comma() }
                price.write(to: &writer)
            }
            writer.raw("]}")
        case .notification(let envelope):
            writer.object(envelope.data)
        case .pong(let requestID):
            writer.raw("{\"server_time\":")
            writeTimestamp(sentAt, into: &writer)
            writeRequestID(requestID, into: &writer)
            writer.raw("}")
        case .subscribedPrices(let symbols, let requestID), .unsubscribedPrices(let symbols, let requestID):
            writer.raw("{\"channel\":\"prices\",\"symbols\":")
            writeSymbols(symbols, into: &writer)
            writeRequestID(requestID, into: &writer)
            writer.raw("}")
        case .subscribedNotifications(let userID, let recovered, let requestID):
            writer.raw("{\"channel\":\"notifications\",\"user_id\":")
            writer.string(userID)
            writer.raw(",\"recovered\":")
            writer.bool(recovered)
            writeRequestID(requestID, into: &writer)
            writer.raw("}")
        case .unsubscribedNotifications(let userID, let requestID):
            writer.raw("{\"channel\":\"notifications\",\"user_id\":")
            writer.string(userID)
            writeRequestID(requestID, into: &writer)
            writer.raw("}")
        case .authenticated(let userID, let expiresAt, let requestID):
            writer.raw("{\"user_id\":")
            writer.string(userID)
            if let expiresAt {
                writer.raw(",\"expires_at\":")
                writeTimestamp(expiresAt, into: &writer)
            }
            writeRequestID(requestID, into: &writer)
            writer.raw("}")
        case .error(let violation, let requestID):
            writer.raw("{\"code\":")
            writer.string(violation.code.rawValue)
            writer.raw(",\"message\":")
            writer.string(violation.message)
            writer.raw(",\"details\":")
            writer.object(violation.details)
            writeRequestID(requestID, into: &writer)
            writer.raw("}")
        }
    }
}

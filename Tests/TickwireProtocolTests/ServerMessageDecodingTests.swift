import Testing
import TickwireProtocol

/// What the server encodes, a client decodes to the same value; client frames likewise.
@Suite struct ServerMessageDecodingTests {
    static let sentAt = Timestamp(millisecondsSinceEpoch: 1_760_437_800_123)
    static let price = PriceUpdate(
        symbol: "BTC", priceUSD: "90123.45", change24h: "-1.2", volume24h: "123456789.5", timestamp: sentAt, source: "coinbase",
        stale: true, extra: ["bench": "s:1:2"])

    static let messages: [ServerMessage] = [
        .connected(
            .init(
                connectionID: "6f1c", userID: "alice", heartbeatIntervalMilliseconds: 30_000, heartbeatTimeoutMilliseconds: 60_000,
                expiresAt: sentAt.adding(milliseconds: 3_600_000))),
        .priceUpdate(price),
        .priceBatch([price, PriceUpdate(symbol: "ETH", priceUSD: "0.00001234", change24h: "0", volume24h: nil, timestamp: sentAt)]),
        .notification(
            NotificationEnvelope(
                id: StreamID(milliseconds: 1_760_437_800_000, sequence: 3), kind: .balanceUpdate,
                data: ["wallet_id": "w", "balance": "1.5", "balance_usd": "3.0", "symbol": "ETH", "extra": ["nested": true]],
                timestamp: sentAt)),
        .pong(requestID: .integer(7)),
        .subscribedPrices(symbols: ["BTC", "ETH"], requestID: .string("a")),
        .subscribedNotifications(userID: "alice", recovered: true, requestID: nil),
        .unsubscribedPrices(symbols: [], requestID: .integer(9)),
        .unsubscribedNotifications(userID: "alice", requestID: nil),
        .authenticated(userID: "alice", expiresAt: sentAt, requestID: .integer(3)),
        .error(ProtocolViolation(.rateLimited, "slow", details: ["retry_after_ms": 500]), requestID: .integer(4)),
    ]

    @Test(arguments: messages)
    func decodesWhatTheServerEncodes(_ message: ServerMessage) throws {
        let frame = try #require(try ServerMessage.decode(message.encode(sentAt: Self.sentAt)))
        #expect(frame.message == message)
        #expect(frame.sentAt == Self.sentAt)
    }

    @Test func unknownEventsAreSkippedAndBrokenFramesRefused() throws {
        #expect(try ServerMessage.decode(Array(#"{"event":"future","data":{},"timestamp":"2025-10-14T10:30:00.123Z"}"#.utf8)) == nil)
        for text in ["nope", "[]", #"{"event":"pong"}"#, #"{"event":"price_update","data":{"symbol":"BTC"},"timestamp":"2025-10-14T10:30:00.123Z"}"#] {
            #expect(throws: ProtocolViolation.self) { try ServerMessage.decode(Array(text.utf8)) }
        }
    }

    @Test func anUnknownErrorCodeStillReachesTheClient() throws {
        let text = #"{"event":"error","data":{"code":"NEW_CODE","message":"m","details":{}},"timestamp":"2025-10-14T10:30:00.123Z"}"#
        guard case .error(let violation, _)? = try ServerMessage.decode(Array(text.utf8))?.message else {
            Issue.record("not an error")
            return
        }
        #expect(violation.details["code"] == "NEW_CODE")
    }

    static let actions: [ClientMessage] = [
        ClientMessage(action: .subscribePrices(symbols: ["BTC", "ETH"]), requestID: .integer(1)),
        ClientMessage(action: .unsubscribePrices(symbols: ["BTC"])),
        ClientMessage(action: .subscribeNotifications(userID: "alice", since: StreamID("5-1")), requestID: .string("x")),
        ClientMessage(action: .subscribeNotifications(userID: "alice", since: nil)),
        ClientMessage(action: .unsubscribeNotifications(userID: "al\"ice")),
        ClientMessage(action: .ping, requestID: .integer(2)),
        ClientMessage(action: .auth(token: "a.b.c")),
    ]

    @Test(arguments: actions)
    func clientFramesReadBackAsWritten(_ message: ClientMessage) throws {
        #expect(try ClientMessage.parse(Array(message.jsonText.utf8)).get() == message)
    }

    @Test func walletEventsAreTypedAndChecked() throws {
        let envelope = NotificationEnvelope(
            id: StreamID("1-0")!, kind: .notification,
            data: ["notification_id": "n", "type": "t", "title": "Hi", "message": "m", "priority": "high"], timestamp: Self.sentAt)
        guard case .notification(let notification) = try WalletEvent(envelope) else {
            Issue.record("not a notification")
            return
        }
        #expect(notification.priority == .high)
        #expect(notification.title == "Hi")
        var broken = envelope
        broken.data["priority"] = "urgent"
        #expect(throws: ProtocolViolation.self) { try WalletEvent(broken) }
    }
}

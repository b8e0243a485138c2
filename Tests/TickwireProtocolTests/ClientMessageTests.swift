import Testing

@testable import TickwireProtocol

@Suite struct ClientMessages {
    func parse(_ text: String) -> Result<ClientMessage, RejectedClientMessage> {
        ClientMessage.parse(Array(text.utf8))
    }

    func violation(_ text: String) -> (ErrorCode, RequestID?)? {
        guard case .failure(let rejected) = parse(text) else { return nil }
        return (rejected.violation.code, rejected.requestID)
    }

    @Test func subscribePricesNormalizesAndDeduplicates() throws {
        let message = try parse(#"{"action":"subscribe","channel":"prices","symbols":["btc","ETH","Btc"],"request_id":"r1"}"#).get()
        #expect(message.action == .subscribePrices(symbols: ["BTC", "ETH"]))
        #expect(message.requestID == .string("r1"))
    }

    @Test func unsubscribeWithoutSymbolsMeansAll() throws {
        #expect(try parse(#"{"action":"unsubscribe","channel":"prices"}"#).get().action == .unsubscribePrices(symbols: []))
        #expect(try parse(#"{"action":"unsubscribe","channel":"prices","symbols":[]}"#).get().action == .unsubscribePrices(symbols: []))
    }

    @Test func notificationsCarryUserAndSince() throws {
        let message = try parse(#"{"action":"subscribe","channel":"notifications","user_id":"u1","since":"17-2","request_id":7}"#).get()
        #expect(message.action == .subscribeNotifications(userID: "u1", since: StreamID(milliseconds: 17, sequence: 2)))
        #expect(message.requestID == .integer(7))
        #expect(try parse(#"{"action":"unsubscribe","channel":"notifications","user_id":"u1"}"#).get().action
            == .unsubscribeNotifications(userID: "u1"))
    }

    @Test func pingAndAuth() throws {
        #expect(try parse(#"{"action":"ping"}"#).get().action == .ping)
        #expect(try parse(#"{"action":"auth","token":"abc"}"#).get().action == .auth(token: "abc"))
    }

    @Test(arguments: [
        "not json", "[1,2]", "\"ping\"", "{}", #"{"action":1}"#, #"{"action":"subscribe"}"#,
        #"{"action":"subscribe","channel":5}"#, #"{"action":"subscribe","channel":"prices"}"#,
        #"{"action":"subscribe","channel":"prices","symbols":[]}"#,
        #"{"action":"subscribe","channel":"prices","symbols":"BTC"}"#,
        #"{"action":"subscribe","channel":"prices","symbols":[1]}"#,
        #"{"action":"subscribe","channel":"prices","symbols":["BTC-USD"]}"#,
        #"{"action":"subscribe","channel":"notifications"}"#,
        #"{"action":"subscribe","channel":"notifications","user_id":""}"#,
        #"{"action":"subscribe","channel":"notifications","user_id":"u","since":5}"#,
        #"{"action":"subscribe","channel":"notifications","user_id":"u","since":"abc"}"#,
        #"{"action":"auth"}"#, #"{"action":"ping","request_id":1.5}"#, #"{"action":"ping","request_id":true}"#,
    ])
    func malformedFramesAreInvalidMessage(_ text: String) {
        #expect(violation(text)?.0 == .invalidMessage)
    }

    @Test func tooManySymbolsInOneMessage() {
        let symbols = (0...50).map { "\"S\($0)\"" }.joined(separator: ",")
        #expect(violation(#"{"action":"subscribe","channel":"prices","symbols":[\#(symbols)]}"#)?.0 == .invalidMessage)
    }

    @Test func unknownActionAndChannelHaveTheirOwnCodes() {
        #expect(violation(#"{"action":"dance","request_id":"x"}"#)! == (.unknownAction, .string("x")))
        #expect(violation(#"{"action":"subscribe","channel":"gossip"}"#)?.0 == .unknownChannel)
    }

    @Test func requestIDIsEchoedEvenWhenTheRestIsWrong() {
        #expect(violation(#"{"action":"subscribe","channel":"prices","request_id":"q"}"#)?.1 == .string("q"))
        let long = String(repeating: "x", count: 65)
        #expect(violation(#"{"action":"ping","request_id":"\#(long)"}"#)! == (.invalidMessage, nil))
    }
}

@Suite struct ServerMessages {
    let at = Timestamp(millisecondsSinceEpoch: 1_760_437_800_123)

    func json(_ message: ServerMessage) throws -> JSONObject {
        try #require(try JSONParser.parse(message.encode(sentAt: at)).objectValue)
    }

    @Test func everyFrameHasEventDataAndMillisecondTimestamp() throws {
        let frame = try json(.pong(requestID: .integer(3)))
        #expect(frame["event"] == "pong")
        #expect(frame["timestamp"] == "2025-10-14T10:30:00.123Z")
        #expect(frame["data"]?.objectValue?["server_time"] == "2025-10-14T10:30:00.123Z")
        #expect(frame["data"]?.objectValue?["request_id"] == 3)
    }

    @Test func priceUpdateUsesDecimalStrings() throws {
        let price = PriceUpdate(
            symbol: "BTC", priceUSD: "50000.00", change24h: "2.5", volume24h: "25000000000.00", timestamp: at,
            source: "simulated")
        let data = try #require(try json(.priceUpdate(price))["data"]?.objectValue)
        #expect(data["price_usd"] == "50000.00")
        #expect(data["price_change_24h"] == "2.5")
        #expect(data["volume_24h"] == "25000000000.00")
        #expect(data["timestamp"] == "2025-10-14T10:30:00.123Z")
        #expect(data["stale"] == false)
        #expect(try PriceUpdate(json: data, receivedAt: at) == price)
    }

    @Test func notificationsCarryATopLevelID() throws {
        let envelope = NotificationEnvelope(
            id: StreamID(milliseconds: 9, sequence: 1), kind: .balanceUpdate,
            data: ["wallet_id": "w", "balance": "1.0", "balance_usd": "2.0", "symbol": "ETH"], timestamp: at)
        let frame = try json(.notification(envelope))
        #expect(frame["event"] == "balance_update")
        #expect(frame["id"] == "9-1")
        #expect(frame["data"]?.objectValue?["wallet_id"] == "w")
        #expect(try NotificationEnvelope(json: try #require(try JSONParser.parse(envelope.jsonBytes).objectValue)) == envelope)
    }

    @Test func errorsCarryCodeMessageDetailsAndRequestID() throws {
        let violation = ProtocolViolation(.unknownSymbol, "unknown symbols", details: ["symbols": ["FOO"]])
        let data = try #require(try json(.error(violation, requestID: .string("r"))) ["data"]?.objectValue)
        #expect(data["code"] == "UNKNOWN_SYMBOL")
        #expect(data["details"]?.objectValue?["symbols"] == ["FOO"])
        #expect(data["request_id"] == "r")
    }
}

@Suite struct NotificationSchemas {
    @Test func acceptsTheSpecificationsExamples() throws {
        try NotificationKind.transactionUpdate.validate([
            "transaction_id": "t", "type": "receive", "amount": "1.5", "symbol": "ETH", "status": "confirmed",
            "confirmations": 12, "from_address": "0xabc", "tx_hash": "0xdef", "memo": "extra fields pass",
        ])
        try NotificationKind.balanceUpdate.validate([
            "wallet_id": "w", "balance": "5.25", "balance_usd": "168000.00", "symbol": "BTC",
        ])
        try NotificationKind.notification.validate([
            "notification_id": "n", "type": "kyc_approved", "title": "T", "message": "M", "priority": "high",
        ])
    }

    @Test func namesTheOffendingField() throws {
        #expect(throws: ProtocolViolation(.invalidMessage, "data.amount must be a decimal string such as \"1.5\"", details: ["field": "amount"])) {
            try NotificationKind.transactionUpdate.validate([
                "transaction_id": "t", "type": "receive", "amount": .number("1.5"),
                "symbol": "ETH", "status": "confirmed", "confirmations": 1, "from_address": "a", "tx_hash": "h",
            ])
        }
        #expect(throws: ProtocolViolation.self) {
            try NotificationKind.notification.validate([
                "notification_id": "n", "type": "t", "title": "T", "message": "M", "priority": "urgent",
            ])
        }
        #expect(throws: ProtocolViolation.self) { try NotificationKind.balanceUpdate.validate(["wallet_id": "w"]) }
    }
}

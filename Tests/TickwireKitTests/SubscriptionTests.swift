import Foundation
import Testing
import TickwireKit
import TickwireTestSupport

/// docs/CLIENTS.md, "Prices", "After every reconnect", "Errors", and the id store.
@Suite(.timeLimit(.minutes(1))) struct SubscriptionTests {
    @Test func pricesArriveAsSinglePricesWithDecimalStrings() async throws {
        let gateway = try await ScriptedGateway.start()
        let client = makeClient(gateway, clock: ManualClock())
        let prices = Collected(client.prices(["btc", "ETH"]))
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        let asked = try await server.acceptPriceSubscription(prices: ["BTC": "90123.45", "ETH": "0.00001234"])
        #expect(asked == ["BTC", "ETH"])
        let first = try await prices.next()
        let second = try await prices.next()
        #expect([first.symbol, second.symbol] == ["BTC", "ETH"])
        #expect(second.priceUSD == "0.00001234")
        #expect(first.priceUSDDecimal == Decimal(string: "90123.45"))
        var stale = FakeWebSocketServer.Connection.price("BTC", "90000.00")
        stale.stale = true
        try await server.send(.priceUpdate(stale))
        #expect(try await prices.next().stale)
        client.close()
    }

    @Test func overlappingStreamsShareSymbolsAndCancellingOneUnsubscribesOnlyItsOwn() async throws {
        let gateway = try await ScriptedGateway.start()
        let client = makeClient(gateway, clock: ManualClock())
        let both = Collected(client.prices(["BTC", "ETH"]))
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await server.acceptPriceSubscription(prices: ["BTC": "1.00", "ETH": "2.00"])
        _ = try await both.next()
        _ = try await both.next()
        // A stream for a symbol already held gets its last price at once; nothing is sent.
        let ethOnly = Collected(client.prices(["ETH"]))
        #expect(try await ethOnly.next().priceUSD == "2.00")
        both.task.cancel()
        let unsubscribe = try await server.expectFrame("unsubscribe")
        #expect(unsubscribe["symbols"] == ["BTC"])
        try await server.send(.unsubscribedPrices(symbols: ["ETH"], requestID: unsubscribe.requestID))
        try await server.send(.priceUpdate(FakeWebSocketServer.Connection.price("ETH", "2.50")))
        #expect(try await ethOnly.next().priceUSD == "2.50")
        client.close()
    }

    @Test func moreThanFiftySymbolsGoInSeveralFrames() async throws {
        let gateway = try await ScriptedGateway.start()
        let client = makeClient(gateway, clock: ManualClock())
        let symbols = (0..<70).map { "S\($0)" }
        _ = Collected(client.prices(symbols))
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        let first = try await server.acceptPriceSubscription()
        let second = try await server.acceptPriceSubscription(held: first)
        #expect(first.count == 50)
        #expect(Set(first + second) == Set(symbols))
        client.close()
    }

    @Test func everyPriceSymbolIsResubscribedAfterAReconnect() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        _ = Collected(client.prices(["BTC", "ETH"]))
        _ = Collected(client.prices(["SOL"]))
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        try await server.acceptPriceSubscription()
        await server.close(code: 1001)
        clock.advance(by: try await log.reconnecting().delay)
        let again = try await gateway.nextConnection()
        try await again.sendConnected()
        #expect(Set(try await again.acceptPriceSubscription()) == ["BTC", "ETH", "SOL"])
        client.close()
    }

    @Test func serverErrorsReachTheAppWithTheirRequestID() async throws {
        let gateway = try await ScriptedGateway.start()
        let client = makeClient(gateway, clock: ManualClock())
        let errors = Collected(client.errors)
        _ = Collected(client.prices(["BTC", "NOPE"]))
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        let frame = try await server.expectFrame("subscribe")
        try await server.send(.subscribedPrices(symbols: ["BTC"], requestID: frame.requestID))
        try await server.send(.error(ProtocolViolation(.unknownSymbol, "unknown", details: ["symbols": ["NOPE"]]), requestID: frame.requestID))
        let error = try await errors.next()
        #expect(error.code == "UNKNOWN_SYMBOL")
        #expect(error.requestID == frame.requestID)
        #expect(error.requestID != nil)
        // The refused symbol is not asked for again, on this connection or the next.
        #expect(await server.next(timeout: .milliseconds(300)) == nil)
        client.close()
    }

    @Test func aRateLimitedChangeIsSentAgainAfterRetryAfter() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let errors = Collected(client.errors)
        _ = Collected(client.prices(["BTC"]))
        let server = try await gateway.nextConnection()
        try await server.sendConnected()
        let frame = try await server.expectFrame("subscribe")
        try await server.send(
            .error(
                ProtocolViolation(.rateLimited, "slow down", details: ["limit": "subscriptions", "retry_after_ms": 2000]),
                requestID: frame.requestID))
        #expect(try await errors.next().code == "RATE_LIMITED")
        clock.advance(by: .milliseconds(1999))
        await #expect(throws: KitTestFailure.self) { try await server.expectFrame("subscribe", timeout: .milliseconds(300)) }
        clock.advance(by: .milliseconds(1))
        #expect(try await server.expectFrame("subscribe")["symbols"] == ["BTC"])
        client.close()
    }

    @Test func notificationsResubscribeWithSinceAndDropDuplicates() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let client = makeClient(gateway, clock: clock)
        let log = StateLog(client)
        let events = Collected(client.notifications())
        let server = try await gateway.nextConnection()
        try await server.sendConnected(user: "alice")
        #expect(try await server.acceptNotificationSubscription() == nil)
        try await server.sendNotification("100-0")
        try await server.sendNotification("101-0")
        await server.close(code: 1001)
        clock.advance(by: try await log.reconnecting().delay)
        let again = try await gateway.nextConnection()
        try await again.sendConnected(user: "alice")
        #expect(try await again.acceptNotificationSubscription() == "101-0")
        try await again.sendNotification("101-0")
        try await again.sendNotification("102-0")
        var ids: [String] = []
        for _ in 0..<3 { ids.append(try await events.next().id.description) }
        #expect(ids == ["100-0", "101-0", "102-0"])
        client.close()
    }

    @Test func recoveredFalseAfterSinceIsAGap() async throws {
        let gateway = try await ScriptedGateway.start()
        let clock = ManualClock()
        let store = InMemoryNotificationIDStore()
        store.setLastID("50-0", forKey: "tickwire:last-id:ws://127.0.0.1:\(gateway.server.port)/ws:alice")
        let client = makeClient(gateway, clock: clock, store: store)
        let gaps = Collected(client.gaps)
        _ = Collected(client.notifications())
        let server = try await gateway.nextConnection()
        try await server.sendConnected(user: "alice")
        #expect(try await server.acceptNotificationSubscription(recovered: false) == "50-0")
        #expect(try await gaps.next() == NotificationGap(userID: "alice", since: "50-0"))
        client.close()
    }

    @Test func theLastIDIsKeptInTheStoreSoARelaunchCatchesUp() async throws {
        let gateway = try await ScriptedGateway.start()
        let store = InMemoryNotificationIDStore()
        let first = makeClient(gateway, clock: ManualClock(), store: store)
        let events = Collected(first.notifications())
        let server = try await gateway.nextConnection()
        try await server.sendConnected(user: "alice")
        _ = try await server.acceptNotificationSubscription()
        try await server.sendNotification("7-3")
        _ = try await events.next()
        first.close()
        // The app is relaunched: a new client with the same store.
        let second = makeClient(gateway, clock: ManualClock(), store: store)
        _ = Collected(second.notifications())
        let again = try await gateway.nextConnection()
        try await again.sendConnected(user: "alice")
        #expect(try await again.acceptNotificationSubscription() == "7-3")
        second.close()
    }

    @Test func notificationsAreTypedByEvent() async throws {
        let gateway = try await ScriptedGateway.start()
        let client = makeClient(gateway, clock: ManualClock())
        let events = Collected(client.notifications())
        let server = try await gateway.nextConnection()
        try await server.sendConnected(user: "alice")
        _ = try await server.acceptNotificationSubscription()
        let data: JSONObject = [
            "transaction_id": "tx1", "type": "receive", "amount": "0.5", "symbol": "BTC", "status": "confirmed",
            "confirmations": 6, "from_address": "bc1q", "tx_hash": "0xabc", "memo": "rent",
        ]
        try await server.send(.notification(NotificationEnvelope(id: StreamID("9-0")!, kind: .transactionUpdate, data: data, timestamp: .now())))
        guard case .transaction(let transaction) = try await events.next() else { throw KitTestFailure("expected a transaction") }
        #expect(transaction.amount == "0.5")
        #expect(transaction.confirmations == 6)
        #expect(transaction.txHash == "0xabc")
        #expect(transaction.data["memo"] == "rent")
        client.close()
    }

    @Test func everyStreamEndsWhenTheClientIsClosed() async throws {
        let gateway = try await ScriptedGateway.start()
        let client = makeClient(gateway, clock: ManualClock())
        let ended = Mailbox<String>()
        _ = Collected(client.prices(["BTC"])) { ended.push("prices") }
        _ = Collected(client.notifications()) { ended.push("notifications") }
        _ = Collected(client.states) { ended.push("states") }
        _ = Collected(client.errors) { ended.push("errors") }
        _ = Collected(client.gaps) { ended.push("gaps") }
        _ = try await gateway.nextConnection()
        client.close()
        var names: Set<String> = []
        for _ in 0..<5 { if let name = await ended.next(timeout: .seconds(5)) { names.insert(name) } }
        #expect(names == ["prices", "notifications", "states", "errors", "gaps"])
    }
}

import Testing
import TickwireProtocol

@Suite(.timeLimit(.minutes(1)))
struct Prices {
    /// Waits until the feed has produced prices for every symbol listed.
    func waitForPrices(_ server: TestServer, _ symbols: Set<String>) async throws {
        try await eventually("prices for \(symbols)") {
            let prices = try await server.http("GET", "/api/v1/prices").json?["prices"]?.arrayValue ?? []
            let have = Set(prices.compactMap { $0.objectValue?["symbol"]?.stringValue })
            return symbols.isSubset(of: have)
        }
    }

    @Test func subscribeRepliesWithTheWholeSetThenASnapshotOfTheAddedSymbols() async throws {
        let server = try await TestServer.start(["--feed-tick", "0.1"])
        try await waitForPrices(server, ["BTC", "ETH", "SOL", "XLM"])
        let socket = try await server.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["btc","ETH"]}"#)
        let subscribed = try await socket.nextEvent()
        #expect(subscribed.name == "subscribed")
        #expect(subscribed.data["channel"] == "prices")
        #expect(subscribed.data["symbols"] == ["BTC", "ETH"])
        let batch = try await socket.nextEvent()
        #expect(batch.name == "price_batch")
        let symbols = batch.data["prices"]?.arrayValue?.compactMap { $0.objectValue?["symbol"]?.stringValue }
        #expect(symbols == ["BTC", "ETH"])

        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["ETH","SOL","XLM"]}"#)
        let second = try await socket.expectEvent("subscribed")
        #expect(second.data["symbols"] == ["BTC", "ETH", "SOL", "XLM"])
        let secondBatch = try await socket.expectEvent("price_batch")
        let added = secondBatch.data["prices"]?.arrayValue?.compactMap { $0.objectValue?["symbol"]?.stringValue }
        #expect(added == ["SOL", "XLM"])
    }

    @Test func pricesAreDecimalStringsWithSourceTimestamps() async throws {
        let server = try await TestServer.start(["--feed-tick", "0.1", "--price-interval", "0.2"])
        let socket = try await server.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC","SHIB"]}"#)
        for _ in 0..<2 {
            let update = try await socket.expectEvent("price_update")
            let data = update.data
            for field in ["price_usd", "price_change_24h", "volume_24h"] {
                let value = try #require(data[field]?.stringValue, "\(field) must be a string")
                #expect(DecimalString.isValid(value), "\(field) = \(value)")
            }
            #expect(Timestamp(rfc3339: data["timestamp"]?.stringValue ?? "") != nil)
            #expect(data["source"] == "simulated")
            #expect(data["stale"] == false)
            if data["symbol"] == "SHIB" { #expect(data["price_usd"]?.stringValue?.hasPrefix("0.0000") == true) }
        }
    }

    @Test func unknownSymbolsAreNamedAndTheKnownOnesStillSubscribed() async throws {
        let server = try await TestServer.start(["--feed", "none"])
        let socket = try await server.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC","NOPE","ZZZ"],"request_id":1}"#)
        let subscribed = try await socket.nextEvent()
        #expect(subscribed.name == "subscribed" && subscribed.data["symbols"] == ["BTC"])
        let error = try await socket.nextEvent()
        #expect(error.errorCode == "UNKNOWN_SYMBOL")
        #expect(error.data["details"]?.objectValue?["symbols"] == ["NOPE", "ZZZ"])
        #expect(error.data["request_id"] == 1)
    }

    @Test func aConnectionHoldsAtMost100Symbols() async throws {
        let many = (1...120).map { "S\($0)" }
        let server = try await TestServer.start(["--feed", "none", "--symbols", many.joined(separator: ",")])
        let socket = try await server.connectReady()
        func subscribe(_ symbols: ArraySlice<String>) async throws -> Event {
            let list = symbols.map { "\"\($0)\"" }.joined(separator: ",")
            try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":[\#(list)]}"#)
            return try await socket.nextEvent()
        }
        #expect(try await subscribe(many[0..<50]).name == "subscribed")
        #expect(try await subscribe(many[50..<100]).data["symbols"]?.arrayValue?.count == 100)
        let refused = try await subscribe(many[100..<101])
        #expect(refused.errorCode == "SUBSCRIPTION_LIMIT")
        #expect(try await subscribe(many[0..<1]).name == "subscribed", "resubscribing a held symbol is harmless")
        let tooManyAtOnce = (0...50).map { "\"\(many[$0])\"" }.joined(separator: ",")
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":[\#(tooManyAtOnce)]}"#)
        #expect(try await socket.nextEvent().errorCode == "INVALID_MESSAGE")
    }

    @Test func unsubscribeStopsUpdatesAndReportsWhatRemains() async throws {
        let server = try await TestServer.start(["--feed-tick", "0.05", "--price-interval", "0.1"])
        let socket = try await server.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC","ETH"]}"#)
        _ = try await socket.expectEvent("price_update")
        try await socket.send(#"{"action":"unsubscribe","channel":"prices","symbols":["BTC"]}"#)
        let unsubscribed = try await socket.expectEvent("unsubscribed")
        #expect(unsubscribed.data["symbols"] == ["ETH"])
        let after = try await socket.collectEvents(for: .milliseconds(600)).filter { $0.name == "price_update" }
        #expect(!after.isEmpty)
        #expect(after.allSatisfy { $0.data["symbol"] == "ETH" })
        try await socket.send(#"{"action":"unsubscribe","channel":"prices"}"#)
        #expect(try await socket.expectEvent("unsubscribed").data["symbols"] == [])
        try await socket.expectNoEvent("price_update", for: .milliseconds(500))
    }

    /// SC-004 with a 1 s window: prices tick every 100 ms, but a client sees at most one
    /// per second per symbol, and each one is the newest the feed had.
    @Test func atMostOnePricePerSymbolPerWindowAndAlwaysTheLatest() async throws {
        let server = try await TestServer.start(["--feed-tick", "0.1", "--price-interval", "1"])
        let socket = try await server.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC","ETH"]}"#)
        let events = try await socket.collectEvents(for: .milliseconds(4300))
        for symbol in ["BTC", "ETH"] {
            let updates = events.filter { $0.name == "price_update" && $0.data["symbol"] == .string(symbol) }
            #expect(updates.count >= 3 && updates.count <= 5, "\(symbol): \(updates.count) updates in 4.3 s")
            // The envelope timestamp is when the server built the frame, i.e. when the window released it;
            // arrival times would add the test machine's scheduling jitter.
            for (earlier, later) in zip(updates, updates.dropFirst()) {
                let gap = later.sentAt.millisecondsSinceEpoch - earlier.sentAt.millisecondsSinceEpoch
                #expect(gap >= 999, "\(symbol) updates released \(gap) ms apart")
            }
            for update in updates {
                // The newest value: priced by the source no more than one feed tick before it was sent.
                let priced = Timestamp(rfc3339: update.data["timestamp"]!.stringValue!)!
                let sent = Timestamp(rfc3339: update.object["timestamp"]!.stringValue!)!
                #expect(sent.millisecondsSinceEpoch - priced.millisecondsSinceEpoch < 400, "\(update)")
            }
        }
    }

    /// The shipped default: SC-004's five seconds, with the feed ticking every 200 ms.
    @Test func theDefaultWindowIsFiveSeconds() async throws {
        let server = try await TestServer.start(["--feed-tick", "0.2"])
        let socket = try await server.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["SOL"]}"#)
        let updates = try await socket.collectEvents(for: .milliseconds(11_500)).filter { $0.name == "price_update" }
        #expect(updates.count >= 2 && updates.count <= 3, "\(updates.count) updates in 11.5 s")
        for (earlier, later) in zip(updates, updates.dropFirst()) {
            #expect(later.sentAt.millisecondsSinceEpoch - earlier.sentAt.millisecondsSinceEpoch >= 4999)
        }
    }

    @Test func theSnapshotShowsTheLastPriceTheWindowReleased() async throws {
        let server = try await TestServer.start(["--feed-tick", "0.1", "--price-interval", "1"])
        let watcher = try await server.connectReady()
        try await watcher.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        _ = try await watcher.expectEvent("price_update")
        let released = try await watcher.expectEvent("price_update")
        let late = try await server.connectReady(user: "bob")
        try await late.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        let batch = try await late.expectEvent("price_batch")
        let snapshot = try #require(batch.data["prices"]?.arrayValue?.first?.objectValue)
        // Either the update the watcher saw or a newer release, never an unreleased tick.
        let watcherSaw = Timestamp(rfc3339: released.data["timestamp"]!.stringValue!)!
        let snapshotPrice = Timestamp(rfc3339: snapshot["timestamp"]!.stringValue!)!
        #expect(snapshotPrice >= watcherSaw)
        if snapshotPrice == watcherSaw { #expect(snapshot["price_usd"] == released.data["price_usd"]) }
    }

    @Test func theHTTPSnapshotListsTheLatestPrices() async throws {
        let server = try await TestServer.start(["--feed-tick", "0.1", "--symbols", "BTC,ETH"])
        try await waitForPrices(server, ["BTC", "ETH"])
        let response = try await server.http("GET", "/api/v1/prices")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.json?["prices"]?.arrayValue?.count == 2)
    }
}

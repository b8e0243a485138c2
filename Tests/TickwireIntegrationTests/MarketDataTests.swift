import Foundation
import NIOConcurrencyHelpers
import Testing
import TickwireProtocol

/// Real market-data sources end to end: `tickwire feed` and `tickwire serve --feed` pointed at
/// fakes that speak Coinbase's, Kraken's and CoinGecko's protocols on loopback, prices read by a
/// WebSocket client of a gateway. Each fake quotes while its switch holds a price, and goes
/// silent (the connection stays open, nothing arrives) when it holds nil.
@Suite(.timeLimit(.minutes(2)))
struct MarketData {
    /// What a fake quotes now; nil is silence.
    final class Quoting: Sendable {
        private let box: NIOLockedValueBox<String?>
        init(_ price: String?) { box = NIOLockedValueBox(price) }
        var price: String? {
            get { box.withLockedValue { $0 } }
            set { box.withLockedValue { $0 = newValue } }
        }
    }

    static func coinbaseTicker(_ price: String) -> String {
        #"{"type":"ticker","sequence":1,"product_id":"BTC-USD","price":"\#(price)","open_24h":"66000","volume_24h":"12.5","time":"2026-12-02T10:00:00.000000Z"}"#
    }

    /// Coinbase Exchange: the subscribe, then a ticker every 100 ms while `quoting` holds a price.
    static func coinbase(_ quoting: Quoting) async throws -> FakeWebSocketServer {
        try await FakeWebSocketServer.start { connection in
            guard let subscribe = await connection.next(), subscribe.contains("BTC-USD") else { return }
            try await connection.send(#"{"type":"subscriptions","channels":[{"name":"ticker_batch","product_ids":["BTC-USD"]}]}"#)
            while connection.isOpen {
                if let price = quoting.price { try await connection.send(coinbaseTicker(price)) }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Kraken v2: the status greeting, the subscribe ack, then ticker updates with JSON numbers.
    static func kraken(_ quoting: Quoting) async throws -> FakeWebSocketServer {
        try await FakeWebSocketServer.start { connection in
            try await connection.send(#"{"channel":"status","data":[{"api_version":"v2","connection_id":1,"system":"online","version":"2.0.0"}],"type":"update"}"#)
            guard let subscribe = await connection.next(), subscribe.contains("BTC/USD") else { return }
            try await connection.send(#"{"method":"subscribe","result":{"channel":"ticker","snapshot":true,"symbol":"BTC/USD"},"success":true}"#)
            while connection.isOpen {
                if let price = quoting.price {
                    try await connection.send(#"{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","last":\#(price),"volume":10.5,"vwap":67000.0,"change_pct":1.25}]}"#)
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// CoinGecko's REST `/simple/price`: the quote while `quoting` holds one, a 503 otherwise.
    static func coingecko(_ quoting: Quoting) async throws -> FakeHTTPServer {
        try await FakeHTTPServer.start { _ in
            guard let price = quoting.price else { return .init(status: 503, body: #"{"error":"unavailable"}"#) }
            let now = Int(Date().timeIntervalSince1970)
            return .init(body: #"{"bitcoin":{"usd":\#(price),"usd_24h_vol":31260929299.5248,"usd_24h_change":3.63727894677354,"last_updated_at":\#(now)}}"#)
        }
    }

    /// Skips prices until one that `match` accepts.
    func expectPrice(
        _ socket: TestWebSocket, _ what: String, timeout: Duration = .seconds(15), _ match: (JSONObject) -> Bool
    ) async throws -> JSONObject {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw TestFailure("no price \(what) within \(timeout)") }
            let event = try await socket.expectEvent("price_update", timeout: remaining)
            if match(event.data) { return event.data }
        }
    }

    @Test func theFeedFailsOverToTheNextFreshSourceMarksStalenessAndFailsBack() async throws {
        let coinbaseQuote = Quoting("67187.33589365"), krakenQuote = Quoting("67190.1"), coingeckoQuote = Quoting("67185.5")
        let coinbase = try await Self.coinbase(coinbaseQuote)
        let kraken = try await Self.kraken(krakenQuote)
        let coingecko = try await Self.coingecko(coingeckoQuote)
        let redis = try await RedisServer.start()
        let gateway = try await TestServer.start(["--redis-url", redis.url, "--price-interval", "0.2"])
        let feed = try TestProcess.launch([
            "feed", "--redis-url", redis.url, "--symbols", "BTC,ETH", "--price-interval", "0.2", "--leader-ttl", "2",
            "--source", "coinbase,kraken,coingecko-rest", "--stale-after", "2",
            "--coinbase-url", coinbase.url, "--kraken-url", kraken.url + "/v2",
            "--coingecko-url", "http://127.0.0.1:\(coingecko.port)/api/v3", "--coingecko-poll-interval", "0.5",
        ])
        let socket = try await gateway.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)

        let primary = try await expectPrice(socket, "from coinbase") { $0["source"] == "coinbase" }
        #expect(primary["price_usd"] == "67187.336", "8 significant digits of the source's own, never through a Double")
        #expect(primary["price_change_24h"] == "1.80", "derived from open_24h 66000")
        #expect(primary["stale"] == false)

        coinbaseQuote.price = nil
        let failover = try await expectPrice(socket, "from kraken") { $0["source"] != "coinbase" }
        #expect(failover["source"] == "kraken" && failover["price_usd"] == "67190.10" && failover["stale"] == false)

        krakenQuote.price = nil
        let third = try await expectPrice(socket, "from coingecko") { $0["source"] != "kraken" }
        #expect(third["source"] == "coingecko-rest" && third["price_usd"] == "67185.50" && third["price_change_24h"] == "3.64")

        coingeckoQuote.price = nil
        let stale = try await expectPrice(socket, "marked stale") { $0["stale"] == true }
        #expect(stale["price_usd"] == "67185.50", "the last value, flagged")
        try await socket.expectNoEvent("price_update", for: .seconds(1))

        coinbaseQuote.price = "67201"
        let back = try await expectPrice(socket, "after the primary's return") { $0["stale"] == false }
        #expect(back["source"] == "coinbase" && back["price_usd"] == "67201.00")
        krakenQuote.price = "67190.1"
        let stays = try await socket.collectEvents(for: .seconds(2)).filter { $0.name == "price_update" }
        #expect(!stays.isEmpty && stays.allSatisfy { $0.data["source"] == "coinbase" }, "the primary keeps its place: \(stays)")
        #expect(coinbase.accepted.allSatisfy { $0.target == "/" } && kraken.accepted.allSatisfy { $0.target == "/v2" })
        #expect(coingecko.requests.allSatisfy { $0.target.hasPrefix("/api/v3/simple/price?ids=") })
        #expect(ChildProcess.isAlive(feed.process.processIdentifier), "\(feed.stderr)")
    }

    @Test func serveWithARealSourceDropsGarbageAndAbsurdQuotesAndCountsThem() async throws {
        let coinbase = try await FakeWebSocketServer.start { connection in
            guard await connection.next() != nil else { return }
            // Each line is its own window (feed and gateway both 0.2 s), so a bad quote that got
            // through could not hide behind the next good one.
            for message in [
                Self.coinbaseTicker("100.5"), "garbage", #"{"type":"ticker","product_id":"BTC-USD","price":"1"#,
                Self.coinbaseTicker("-5"), Self.coinbaseTicker("0"), Self.coinbaseTicker("1005"), Self.coinbaseTicker("100.7"),
            ] {
                try await connection.send(message)
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        let server = try await TestServer.start([
            "--feed", "coinbase", "--coinbase-url", coinbase.url, "--price-interval", "0.2", "--symbols", "BTC,ETH",
        ])
        let socket = try await server.connectReady()
        try await socket.send(#"{"action":"subscribe","channel":"prices","symbols":["BTC"]}"#)
        var seen: [String] = []
        _ = try await expectPrice(socket, "100.70") { price in
            seen.append(price["price_usd"]?.stringValue ?? "?")
            return price["price_usd"] == "100.70"
        }
        #expect(Set(seen).isSubset(of: ["100.50", "100.70"]), "\(seen)")
        #expect(try await server.metric(#"tickwire_feed_unreadable_total{source="coinbase"}"#) ?? 0 >= 2)
        #expect(try await server.metric(#"tickwire_feed_rejected_total{source="coinbase",reason="not_positive"}"#) == 2)
        #expect(try await server.metric(#"tickwire_feed_rejected_total{source="coinbase",reason="jump"}"#) == 1)
        #expect(try await server.metric(#"tickwire_feed_source_connected{source="coinbase"}"#) == 1)
        #expect(try await server.metric(#"tickwire_feed_source_in_use{symbol="BTC",source="coinbase"}"#) == 1)
    }

    @Test func aSymbolNoSelectedSourceListsIsAStartupErrorNamingIt() async throws {
        let run = try await TestProcess.run(nil, [
            "feed", "--redis-url", "redis://127.0.0.1:1", "--source", "coinbase,kraken", "--symbols", "BTC,NOPE",
        ])
        #expect(run.status != 0)
        #expect(run.stderr.contains("NOPE"), "\(run.stderr)")
        #expect(run.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(run.stderr)")
    }

    @Test func serveRefusesAFeedThatCannotStartBeforeItListens() async throws {
        let run = try await TestProcess.run(nil, ["serve", "--port", "0", "--dev", "--feed", "coingecko-ws"])
        #expect(run.status != 0)
        #expect(run.stderr.contains("tickwire: error: coingecko-ws needs --coingecko-key"), "\(run.stderr)")
        #expect(!(run.stdout + run.stderr).contains("listening"), "no client was ever let in")
    }
}

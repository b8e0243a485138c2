import NIOCore
import Testing
import TickwireProtocol
import TickwireTestSupport

@testable import TickwireMarketData

/// Each source against a fake that speaks its provider's protocol on a real loopback socket:
/// the handshake it expects, the messages it sends, and the ways a provider fails.
@Suite(.timeLimit(.minutes(1)))
struct Sources {
    /// Runs `source` in the background; its events arrive in the returned mailbox.
    func run(_ source: some MarketDataSource, symbols: [String]) -> (Mailbox<SourceEvent>, Task<Void, Never>) {
        let events = Mailbox<SourceEvent>()
        let task = Task { _ = try? await source.run(symbols: symbols) { events.push($0) } }
        return (events, task)
    }

    /// The next event that `match` accepts, skipping others.
    func expect(_ events: Mailbox<SourceEvent>, timeout: Duration = .seconds(10), _ what: String, _ match: (SourceEvent) -> Bool) async throws -> SourceEvent {
        let deadline = ContinuousClock.now + timeout
        while let event = await events.next(timeout: deadline - ContinuousClock.now) {
            if match(event) { return event }
        }
        throw SupportFailure("no \(what) within \(timeout)")
    }

    func prices(_ event: SourceEvent) -> [String] {
        guard case .quotes(let quotes) = event else { return [] }
        return quotes.map { "\($0.symbol) \($0.price)" }
    }

    func isConnected(_ event: SourceEvent) -> Bool { event == .connected }
    func isDisconnected(_ event: SourceEvent) -> Bool { if case .disconnected = event { true } else { false } }

    func coinbaseTicker(_ product: String, _ price: String) -> String {
        #"{"type":"ticker","sequence":1,"product_id":"\#(product)","price":"\#(price)","open_24h":"100","volume_24h":"10","time":"2026-12-02T10:00:00.000000Z"}"#
    }

    @Test func coinbaseSubscribesStreamsAndResubscribesAfterADropMidFrame() async throws {
        let fake = try await FakeWebSocketServer.start { connection in
            guard let subscribe = await connection.next() else { return }
            try await connection.send(#"{"type":"subscriptions","channels":[{"name":"ticker_batch","product_ids":["BTC-USD"]}]}"#)
            let first = subscribe.contains("BTC-USD") && (try? JSONParser.parse(subscribe).objectValue?["type"]) == "subscribe"
            try await connection.send(coinbaseTicker("BTC-USD", first ? "100.5" : "0"))
            try await connection.dropMidFrame(coinbaseTicker("BTC-USD", "100.6"))
        }
        let source = WebSocketSource(
            name: "coinbase", codec: CoinbaseCodec(url: try WebSocketURL(fake.url), symbolMap: .builtIn), symbolMap: .builtIn, column: .coinbase)
        let (events, task) = run(source, symbols: ["BTC", "TRX"])
        defer { task.cancel() }
        _ = try await expect(events, "connected", isConnected)
        #expect(prices(try await expect(events, "a quote") { !prices($0).isEmpty }) == ["BTC 100.5"])
        _ = try await expect(events, "the drop", isDisconnected)
        _ = try await expect(events, "a reconnect", isConnected)
        _ = try await expect(events, "a quote after the reconnect") { !prices($0).isEmpty }
        #expect(fake.accepted.count >= 2, "resubscribed on a new connection")
        #expect(fake.accepted.allSatisfy { $0.target == "/" })
    }

    @Test func krakenAfterItsStatusGreetingAndAWatchdogForSilence() async throws {
        let fake = try await FakeWebSocketServer.start { connection in
            try await connection.send(#"{"channel":"status","data":[{"api_version":"v2","connection_id":13834774380200032777,"system":"online","version":"2.0.0"}],"type":"update"}"#)
            guard let subscribe = await connection.next(), subscribe.contains("ETH/USD") else { return }
            try await connection.send(#"{"method":"subscribe","result":{"channel":"ticker","snapshot":true,"symbol":"ETH/USD"},"success":true}"#)
            try await connection.send(#"{"channel":"ticker","type":"snapshot","data":[{"symbol":"ETH/USD","last":3200.25,"volume":10.5,"vwap":3190.0,"change_pct":1.25}]}"#)
            try await connection.send(#"{"channel":"heartbeat"}"#)
            // Then nothing, not even a heartbeat: a half-open connection.
        }
        var codec = KrakenCodec(url: try WebSocketURL(fake.url), symbolMap: .builtIn)
        codec.idleTimeout = .seconds(1)
        let (events, task) = run(WebSocketSource(name: "kraken", codec: codec, symbolMap: .builtIn, column: .kraken), symbols: ["ETH"])
        defer { task.cancel() }
        #expect(prices(try await expect(events, "the snapshot") { !prices($0).isEmpty }) == ["ETH 3200.25"])
        let silence = ContinuousClock.now
        _ = try await expect(events, "the watchdog", isDisconnected)
        #expect(ContinuousClock.now - silence < .seconds(5))
        _ = try await expect(events, "a reconnect", isConnected)
    }

    @Test func binanceStreamsInThePathPongsAndReconnectsOnShutdown() async throws {
        let fake = try await FakeWebSocketServer.start { connection in
            try await connection.ping("keepalive")
            try await connection.send(#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BTCUSDT","c":"90000.10","P":"1.5","q":"123456789.5"}}"#)
            try await connection.send(#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#)
        }
        let codec = BinanceCodec(url: try WebSocketURL(fake.url), symbolMap: .builtIn)
        let (events, task) = run(WebSocketSource(name: "binance", codec: codec, symbolMap: .builtIn, column: .binance), symbols: ["BTC", "ETH"])
        defer { task.cancel() }
        #expect(prices(try await expect(events, "a ticker") { !prices($0).isEmpty }) == ["BTC 90000.10"])
        _ = try await expect(events, "the shutdown", isDisconnected)
        _ = try await expect(events, "a reconnect", isConnected)
        let first = try #require(fake.accepted.first)
        #expect(first.target == "/stream?streams=btcusdt@ticker/ethusdt@ticker")
        #expect(await first.next() == "pong:keepalive", "the server's ping is answered with its payload")
    }

    @Test func coingeckoStreamFollowsTheActionCableHandshake() async throws {
        let fake = try await FakeWebSocketServer.start { connection in
            guard connection.header("x-cg-pro-api-key") == "paid-key" else {
                await connection.close()
                return
            }
            try await connection.send(#"{"type":"welcome"}"#)
            guard let subscribe = await connection.next(), subscribe.contains("CGSimplePrice") else { return }
            try await connection.send(#"{"type":"confirm_subscription","identifier":"{\"channel\":\"CGSimplePrice\"}"}"#)
            guard let setTokens = await connection.next(), setTokens.contains("set_tokens"), setTokens.contains("bitcoin") else { return }
            try await connection.send(#"{"code":2000,"message":"Subscription is successful for bitcoin"}"#)
            try await connection.send(#"{"type":"ping","message":1747808150}"#)
            try await connection.send(#"{"c":"C1","i":"bitcoin","vs":"usd","p":"61696.68","pp":1.42,"t":1780839768.5,"v":30595921115.54}"#)
        }
        let codec = CoinGeckoStreamCodec(url: try WebSocketURL(fake.url), key: "paid-key", symbolMap: .builtIn)
        let (events, task) = run(WebSocketSource(name: "coingecko-ws", codec: codec, symbolMap: .builtIn, column: .coingecko), symbols: ["BTC"])
        defer { task.cancel() }
        #expect(prices(try await expect(events, "a price") { !prices($0).isEmpty }) == ["BTC 61696.68"])
    }

    @Test func coingeckoRESTHonoursRetryAfterAndBacksOffWithoutIt() async throws {
        let body = #"{"bitcoin":{"usd":67187.3358936566,"usd_24h_vol":31260929299.5248,"usd_24h_change":3.63727894677354,"last_updated_at":1711356300}}"#
        let fake = try await FakeHTTPServer.start { _ in .init(body: body) }
        let limited = try await FakeHTTPServer.start { request in
            request.header("x-cg-demo-api-key") == "demo-key"
                ? .init(status: 429, headers: [("Retry-After", "1")], body: #"{"status":{"error_code":429,"error_message":"You've exceeded the Rate Limit."}}"#)
                : .init(status: 401, body: "{}")
        }
        let bare = try await FakeHTTPServer.start { _ in .init(status: 429, headers: [], body: "{}") }

        let (events, task) = run(
            CoinGeckoRESTSource(url: "http://127.0.0.1:\(fake.port)/api/v3", plan: .demo, pollInterval: .milliseconds(200), symbolMap: .builtIn),
            symbols: ["BTC"])
        defer { task.cancel() }
        _ = try await expect(events, "connected", isConnected)
        #expect(prices(try await expect(events, "a price") { !prices($0).isEmpty }) == ["BTC 67187.3358936566"])
        #expect(fake.requests.first?.target.hasPrefix("/api/v3/simple/price?ids=bitcoin&vs_currencies=usd") == true)

        let (_, limitedTask) = run(
            CoinGeckoRESTSource(url: "http://127.0.0.1:\(limited.port)/api/v3", plan: .demo, key: "demo-key", pollInterval: .milliseconds(200), symbolMap: .builtIn),
            symbols: ["BTC"])
        let (_, bareTask) = run(
            CoinGeckoRESTSource(url: "http://127.0.0.1:\(bare.port)/api/v3", plan: .demo, pollInterval: .milliseconds(200), symbolMap: .builtIn),
            symbols: ["BTC"])
        defer { limitedTask.cancel(); bareTask.cancel() }
        try await eventually(timeout: .seconds(10), "two requests under Retry-After") { limited.requests.count >= 2 }
        let waited = limited.requests[1].at - limited.requests[0].at
        #expect(waited >= .milliseconds(950), "Retry-After: 1 is honoured (waited \(waited))")
        try await eventually(timeout: .seconds(10), "three requests without Retry-After") { bare.requests.count >= 3 }
        // Lower bounds only: a loaded machine makes gaps longer, never shorter. 200 ms polls; 429s wait 400, then 800 ms.
        let gaps = zip(bare.requests.dropFirst(), bare.requests).map { $0.at - $1.at }
        #expect(gaps[0] >= .milliseconds(380), "longer than the poll interval: \(gaps)")
        #expect(gaps[1] >= .milliseconds(780), "backing off: \(gaps)")
    }

    @Test func replayPlaysItsTicksWithTheirSpacingThenDisconnects() async throws {
        let text = """
            {"symbol":"BTC","price_usd":"67187.33589365","price_change_24h":"1.20","volume_24h":"1000","timestamp":"2026-12-02T10:00:00Z"}
            {"symbol":"ETH","price_usd":"3200.5","timestamp":"2026-12-02T10:00:00.300Z"}
            {"symbol":"BTC","price_usd":"67190","timestamp":"2026-12-02T10:00:00.600Z"}
            """
        let source = try ReplaySource(path: "ticks.jsonl", text: text)
        #expect(source.mappable(["BTC", "ETH", "SOL"]) == ["BTC", "ETH"])
        let (events, task) = run(source, symbols: ["BTC"])
        defer { task.cancel() }
        let start = ContinuousClock.now
        #expect(prices(try await expect(events, "the first tick") { !prices($0).isEmpty }) == ["BTC 67187.33589365"])
        #expect(prices(try await expect(events, "the second BTC tick") { !prices($0).isEmpty }) == ["BTC 67190"], "ETH is not wanted")
        #expect(ContinuousClock.now - start >= .milliseconds(550), "played with the file's spacing")
        _ = try await expect(events, "the end of the file", isDisconnected)
    }

    @Test func aReplayFileWithABadLineIsRefusedNamingTheLine() {
        let error = #expect(throws: ReplaySource.Unreadable.self) {
            try ReplaySource(path: "ticks.jsonl", text: #"{"symbol":"BTC","price_usd":"1"}"# + "\nnot json\n")
        }
        #expect(error?.description.hasPrefix("ticks.jsonl line 2 ") == true, "\(String(describing: error))")
        #expect((try? ReplaySource(path: "empty.jsonl", text: "\n")) == nil, "no ticks")
    }
}

import Testing
import TickwireProtocol

@testable import TickwireMarketData

/// Each provider's documented sample messages, read as Tickwire reads them. The samples are the
/// providers' own (Coinbase Exchange, Kraken v2, Binance and CoinGecko documentation); where a
/// sample names a pair Tickwire does not list by default, a symbol map row adds it.
@Suite struct ProviderSamples {
    let received = Timestamp(millisecondsSinceEpoch: 1_700_000_000_000)

    func quotes(_ outputs: [CodecOutput]) -> [Quote] {
        outputs.compactMap { if case .quote(let quote) = $0 { quote } else { nil } }
    }

    func update(_ quote: Quote?) -> PriceUpdate? { quote?.priceUpdate(stale: false) }

    // MARK: Coinbase Exchange

    let coinbase = CoinbaseCodec(url: try! WebSocketURL(CoinbaseCodec.defaultURL), symbolMap: .builtIn)

    @Test func coinbaseSubscribesToTickerBatchAndHeartbeat() throws {
        let opening = try #require(coinbase.opening(for: ["BTC", "ETH"]).first)
        let object = try #require(try JSONParser.parse(opening).objectValue)
        #expect(object["type"] == "subscribe")
        #expect(object["product_ids"] == ["BTC-USD", "ETH-USD"])
        #expect(object["channels"] == ["ticker_batch", "heartbeat"])
    }

    @Test func coinbaseTickerSample() throws {
        let sample = """
            {"type":"ticker","sequence":37475248783,"product_id":"ETH-USD","price":"1285.22","open_24h":"1310.79",\
            "volume_24h":"245532.79269678","low_24h":"1280.52","high_24h":"1313.8","volume_30d":"9788783.60117027",\
            "best_bid":"1285.04","best_bid_size":"0.46688654","best_ask":"1285.27","best_ask_size":"1.56637040",\
            "side":"buy","time":"2022-10-19T23:28:22.061769Z","trade_id":370843401,"last_size":"11.4396987"}
            """
        let price = try #require(update(quotes(coinbase.read(sample, symbols: ["ETH"], received: received)).first))
        #expect(price.symbol == "ETH" && price.source == "coinbase")
        #expect(price.priceUSD == "1285.22")
        #expect(price.change24h == "-1.95")  // (1285.22 - 1310.79) / 1310.79
        #expect(price.volume24h == "315563655.83")  // 245532.79269678 ETH at 1285.22
        #expect(price.timestamp.rfc3339 == "2022-10-19T23:28:22.061Z")
    }

    @Test func coinbaseControlMessages() {
        #expect(coinbase.read(#"{"type":"subscriptions","channels":[{"name":"ticker","product_ids":["ETH-USD"]}]}"#, symbols: [], received: received) == [.ignored])
        #expect(coinbase.read(#"{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD","time":"2014-11-07T08:19:28.464459Z"}"#, symbols: [], received: received) == [.ignored])
        #expect(coinbase.read(#"{"type":"error","message":"Failed to subscribe","reason":"GIBBERISH-USD is not a valid product"}"#, symbols: [], received: received)
            == [.providerError("coinbase: Failed to subscribe: GIBBERISH-USD is not a valid product")])
        guard case .unreadable = coinbase.read(#"{"type":"ticker","product_id":"ETH-USD"}"#, symbols: [], received: received).first else {
            Issue.record("a ticker without a price must not pass")
            return
        }
    }

    // MARK: Kraken v2

    let kraken = KrakenCodec(
        url: try! WebSocketURL(KrakenCodec.defaultURL),
        symbolMap: SymbolMap.builtIn.merging(try! SymbolMap(csv: "symbol,kraken\nALGO,ALGO/USD")))

    @Test func krakenTickerSnapshotAndUpdateSamples() throws {
        for type in ["snapshot", "update"] {
            let sample = """
                {"channel":"ticker","type":"\(type)","data":[{"symbol":"ALGO/USD","bid":0.10025,"bid_qty":740.0,"ask":0.10036,\
                "ask_qty":1361.44813783,"last":0.10035,"volume":997038.98383185,"vwap":0.10148,"low":0.09979,"high":0.10285,\
                "change":-0.00017,"change_pct":-0.17,"timestamp":"2023-09-25T09:04:31.742648Z"}]}
                """
            let price = try #require(update(quotes(kraken.read(sample, symbols: ["ALGO"], received: received)).first))
            #expect(price.symbol == "ALGO" && price.source == "kraken")
            #expect(price.priceUSD == "0.10035")
            #expect(price.change24h == "-0.17")
            #expect(price.volume24h == "101179.52")  // 997038.98383185 ALGO at the 24 h VWAP 0.10148
        }
        let subscribe = try #require(try JSONParser.parse(kraken.opening(for: ["ALGO", "BTC"])[0]).objectValue)
        #expect(subscribe["params"]?.objectValue?["symbol"] == ["ALGO/USD", "BTC/USD"])
    }

    @Test func krakenControlMessages() {
        // The status message's connection_id does not fit in an Int64: it must not matter.
        let status = #"{"channel":"status","data":[{"api_version":"v2","connection_id":13834774380200032777,"system":"online","version":"2.0.0"}],"type":"update"}"#
        #expect(kraken.read(status, symbols: [], received: received) == [.ignored])
        #expect(kraken.read(#"{"channel":"heartbeat"}"#, symbols: [], received: received) == [.ignored])
        #expect(kraken.read(#"{"method":"subscribe","result":{"channel":"ticker","snapshot":true,"symbol":"ALGO/USD"},"success":true,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}"#, symbols: [], received: received) == [.ignored])
        #expect(kraken.read(#"{"error":"Currency pair not supported XBT/USD","method":"subscribe","success":false,"symbol":"XBT/USD","time_in":"2018-11-12T21:14:59.545897Z","time_out":"2018-11-12T21:14:59.545901Z"}"#, symbols: [], received: received)
            == [.providerError("kraken: Currency pair not supported XBT/USD (XBT/USD)")])
    }

    // MARK: Binance

    let binance = BinanceCodec(
        url: try! WebSocketURL(BinanceCodec.defaultURL),
        symbolMap: SymbolMap.builtIn.merging(try! SymbolMap(csv: "symbol,binance\nBNB,bnbbtc")))

    @Test func binanceCombinedStreamURL() {
        #expect(binance.url(for: ["BTC", "ETH"]).description == "wss://stream.binance.com:9443/stream?streams=btcusdt@ticker/ethusdt@ticker")
    }

    @Test func binanceTickerSample() throws {
        let sample = """
            {"stream":"bnbbtc@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00",\
            "w":"0.0018","x":"0.0009","c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010",\
            "h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}}
            """
        let price = try #require(update(quotes(binance.read(sample, symbols: ["BNB"], received: received)).first))
        #expect(price.symbol == "BNB" && price.source == "binance")
        #expect(price.priceUSD == "0.0025")
        #expect(price.change24h == "250.00")
        #expect(price.volume24h == "18.00")
        #expect(price.timestamp.millisecondsSinceEpoch == 1_672_515_782_136)
    }

    @Test func binanceShutdownAndErrors() {
        #expect(binance.read(#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#, symbols: [], received: received) == [.reconnect])
        #expect(binance.read(#"{"code": 2, "msg": "Invalid request: too many parameters"}"#, symbols: [], received: received)
            == [.providerError("binance: Invalid request: too many parameters (code 2)")])
        #expect(binance.read(#"{"result":null,"id":1}"#, symbols: [], received: received) == [.ignored])
    }

    // MARK: CoinGecko WebSocket

    let stream = CoinGeckoStreamCodec(url: try! WebSocketURL(CoinGeckoStreamCodec.defaultURL), key: "key", symbolMap: .builtIn)

    @Test func coingeckoStreamHandshake() throws {
        #expect(stream.headers.map(\.0) == ["x-cg-pro-api-key"])
        guard case .reply(let subscribe)? = stream.read(#"{"type":"welcome"}"#, symbols: ["BTC"], received: received).first else {
            Issue.record("welcome must be answered with a subscription")
            return
        }
        #expect(subscribe == #"{"command":"subscribe","identifier":"{\"channel\":\"CGSimplePrice\"}"}"#)
        let confirmed = stream.read(#"{"type":"confirm_subscription","identifier":"{\"channel\":\"CGSimplePrice\"}"}"#, symbols: ["ETH", "BTC"], received: received)
        guard case .reply(let setTokens)? = confirmed.first else {
            Issue.record("confirm_subscription must be answered with set_tokens")
            return
        }
        let object = try #require(try JSONParser.parse(setTokens).objectValue)
        #expect(object["command"] == "message")
        let data = try #require(try JSONParser.parse(object["data"]?.stringValue ?? "").objectValue)
        #expect(data["coin_id"] == ["ethereum", "bitcoin"] && data["action"] == "set_tokens")
        #expect(stream.read(#"{"code":2000,"message":"Subscription is successful for ethereum"}"#, symbols: [], received: received) == [.ignored])
        #expect(stream.read(#"{"code":3000,"message":"welcome"}"#, symbols: [], received: received) == [.ignored])
        #expect(stream.read(#"{"type":"ping","message":1747808150}"#, symbols: [], received: received) == [.ignored])
        guard case .providerError? = stream.read(#"{"code":4011,"message":"too many subscriptions"}"#, symbols: [], received: received).first else {
            Issue.record("another code is an error")
            return
        }
    }

    @Test func coingeckoStreamPriceSampleAndItsVariants() throws {
        let sample = #"{"c":"C1","i":"ethereum","vs":"usd","m":312938652962.8005,"p":2591.080889351465,"pp":1.3763793110454519,"t":1747808150.269067,"v":20460612214.801384}"#
        let price = try #require(update(quotes(stream.read(sample, symbols: ["ETH"], received: received)).first))
        #expect(price.priceUSD == "2591.0809" && price.change24h == "1.38" && price.volume24h == "20460612214.80")
        #expect(price.timestamp.millisecondsSinceEpoch == 1_747_808_150_269)
        // `p` as a string, the keys shuffled, `t` whole seconds.
        let variant = #"{"t":1747808150,"p":"2591.080889351465","i":"ethereum","pp":-0.5,"c":"C1"}"#
        let other = try #require(quotes(stream.read(variant, symbols: ["ETH"], received: received)).first)
        #expect(other.price == DecimalNumber("2591.080889351465")! && other.time.millisecondsSinceEpoch == 1_747_808_150_000)
        // No change known: a stale price; no price known: nothing.
        let noChange = try #require(quotes(stream.read(#"{"c":"C1","i":"bitcoin","p":61696.68,"pp":null,"t":1780839768}"#, symbols: [], received: received)).first)
        #expect(noChange.isStaleAtSource)
        #expect(stream.read(#"{"c":"C1","i":"bitcoin","p":null,"pp":1.2}"#, symbols: [], received: received) == [.ignored])
        // Wrapped as ActionCable may wrap it.
        let wrapped = #"{"identifier":"{\"channel\":\"CGSimplePrice\"}","message":\#(sample)}"#
        #expect(quotes(stream.read(wrapped, symbols: [], received: received)).count == 1)
    }

    // MARK: CoinGecko REST

    @Test func coingeckoRESTSample() throws {
        let body = #"{"bitcoin":{"usd":67187.3358936566,"usd_24h_vol":31260929299.5248,"usd_24h_change":3.63727894677354,"last_updated_at":1711356300}}"#
        let read = CoinGeckoRESTSource.read(body, symbols: .builtIn, received: received)
        let price = try #require(update(read.quotes.first))
        #expect(price.symbol == "BTC" && price.source == "coingecko-rest")
        #expect(price.priceUSD == "67187.336" && price.change24h == "3.64" && price.volume24h == "31260929299.52")
        #expect(price.timestamp.millisecondsSinceEpoch == 1_711_356_300_000)
        #expect(read.problems.isEmpty)
        // CoinGecko: a null 24 h change means the price is stale.
        let stale = CoinGeckoRESTSource.read(#"{"ethereum":{"usd":3200.5,"usd_24h_change":null}}"#, symbols: .builtIn, received: received)
        #expect(stale.quotes.first?.isStaleAtSource == true)
        #expect(CoinGeckoRESTSource.read("<html>", symbols: .builtIn, received: received).problems.count == 1)
    }

    @Test func coingeckoRESTRequestAndRetryAfter() throws {
        let source = CoinGeckoRESTSource(plan: .pro, key: "k", symbolMap: .builtIn)
        let target = try source.target(for: ["BTC", "ETH"])
        #expect(target.host == "pro-api.coingecko.com" && target.usesTLS)
        #expect(target.path == "/api/v3/simple/price?ids=bitcoin,ethereum&vs_currencies=usd&include_24hr_change=true&include_24hr_vol=true&include_last_updated_at=true&precision=full")
        #expect(CoinGeckoRESTSource.Plan.demo.defaultPollInterval == .seconds(60))
        #expect(CoinGeckoRESTSource.Plan.pro.defaultPollInterval == .seconds(20))
        let now = Timestamp(rfc3339: "1994-11-06T08:49:30Z")!
        #expect(CoinGeckoRESTSource.retryAfter("120", now: now) == .seconds(120))
        #expect(CoinGeckoRESTSource.retryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == .milliseconds(7000))
        #expect(CoinGeckoRESTSource.retryAfter("soon", now: now) == nil)
        #expect(CoinGeckoRESTSource.retryAfter(nil, now: now) == nil)
    }
}

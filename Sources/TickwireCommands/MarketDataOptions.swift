import ArgumentParser
import Logging
import TickwireFeed
import TickwireHTTPClient
import TickwireMarketData
import TickwireProtocol

/// Where real prices come from, for `tickwire feed --source` and `tickwire serve --feed`: the
/// sources' URLs and keys, the symbol map, staleness and how sources combine.
struct MarketDataOptions: ParsableArguments {
    static let sourceNames = ["coinbase", "kraken", "binance", "coingecko-rest", "coingecko-ws", "replay:FILE", "simulated"]

    @Option(help: "CoinGecko REST base (the feed appends /simple/price). Default: the plan's host (https://api.coingecko.com/api/v3 or https://pro-api.coingecko.com/api/v3).")
    var coingeckoUrl: String?

    @Option(help: "CoinGecko WebSocket URL (paid plans).")
    var coingeckoWsUrl = CoinGeckoStreamCodec.defaultURL

    @Option(help: "Coinbase Exchange market-data WebSocket URL.")
    var coinbaseUrl = CoinbaseCodec.defaultURL

    @Option(help: "Kraken WebSocket v2 URL.")
    var krakenUrl = KrakenCodec.defaultURL

    @Option(help: "Binance stream host (the feed appends /stream?streams=...).")
    var binanceUrl = BinanceCodec.defaultURL

    @Option(help: "CoinGecko API key (demo or pro, see --coingecko-plan). Without one, the keyless public API.")
    var coingeckoKey: String?

    @Option(help: "demo (also keyless) or pro: the host, the key header and the default poll interval.")
    var coingeckoPlan = "demo"

    @Option(help: "Seconds between CoinGecko REST polls. Default: its cache refresh, 60 (demo) or 20 (pro).")
    var coingeckoPollInterval: Double?

    @Option(help: "Seconds without an update after which a source's price is stale.")
    var staleAfter = 90.0

    @Option(help: "CSV file (symbol,coingecko,coinbase,kraken,binance) whose rows replace the built-in symbol map's.")
    var symbolMap: String?

    @Option(help: "failover (the first fresh source in --source order) or median (the median of the fresh sources).")
    var mode = "failover"

    @Option(help: "With --mode median: ignore a source more than this many percent from the median.")
    var maxDeviation = 1.0

    func validate() throws {
        guard CoinGeckoRESTSource.Plan(rawValue: coingeckoPlan) != nil else { throw ValidationError("--coingecko-plan must be demo or pro") }
        guard coingeckoPollInterval.map({ $0 > 0 }) ?? true else { throw ValidationError("--coingecko-poll-interval must be positive") }
        guard staleAfter > 0 else { throw ValidationError("--stale-after must be positive") }
        guard ["failover", "median"].contains(mode) else { throw ValidationError("--mode must be failover or median") }
        guard maxDeviation > 0 else { throw ValidationError("--max-deviation must be positive") }
        for (option, url) in [("--coingecko-ws-url", coingeckoWsUrl), ("--coinbase-url", coinbaseUrl), ("--kraken-url", krakenUrl), ("--binance-url", binanceUrl)] {
            do { _ = try WebSocketURL(url) } catch { throw ValidationError("\(option): \(error)") }
        }
        if let coingeckoUrl {
            do { _ = try HTTPClient.Target(url: coingeckoUrl) } catch { throw ValidationError("--coingecko-url: \(error)") }
        }
    }

    /// The names of a comma-separated source list, checked.
    static func parseSources(_ list: String, option: String) throws -> [String] {
        let names = list.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("\(option) names no source") }
        for name in names where !(sourceNames.contains(name) || name.hasPrefix("replay:")) {
            throw ValidationError("\(option): unknown source \"\(name)\"; use \(sourceNames.joined(separator: ", "))")
        }
        guard Set(names).count == names.count else { throw ValidationError("\(option) names a source twice") }
        guard !names.contains("simulated") || names == ["simulated"] else {
            throw ValidationError("\(option): simulated prices do not mix with real ones")
        }
        return names
    }

    /// The price source for `names` and `symbols`: the simulation, or real sources behind an aggregator.
    /// A symbol no source can map, a source a key it needs, an unreadable file: an error naming it.
    func makeSource(_ names: [String], symbols: [String], feedTick: Double, logger: Logger) throws -> any PriceSource {
        if names == ["simulated"] { return SimulatedPriceSource(tickInterval: .nanoseconds(Int64(feedTick * 1e9))) }
        var map = SymbolMap.builtIn
        if let symbolMap {
            let text = try FileReader.readText(symbolMap, option: "--symbol-map")
            do { map = map.merging(try SymbolMap(csv: text)) } catch { throw CLIError("--symbol-map \(symbolMap): \(error)") }
        }
        let plan = CoinGeckoRESTSource.Plan(rawValue: coingeckoPlan)!
        let sources: [any MarketDataSource] = try names.map { name in
            switch name {
            case "coinbase":
                return WebSocketSource(name: name, codec: CoinbaseCodec(url: try WebSocketURL(coinbaseUrl), symbolMap: map), symbolMap: map, column: .coinbase)
            case "kraken":
                return WebSocketSource(name: name, codec: KrakenCodec(url: try WebSocketURL(krakenUrl), symbolMap: map), symbolMap: map, column: .kraken)
            case "binance":
                guard symbols.count <= BinanceCodec.maximumStreams else {
                    throw CLIError("binance: one connection carries at most \(BinanceCodec.maximumStreams) symbols")
                }
                return WebSocketSource(name: name, codec: BinanceCodec(url: try WebSocketURL(binanceUrl), symbolMap: map), symbolMap: map, column: .binance)
            case "coingecko-ws":
                guard let coingeckoKey else { throw CLIError("coingecko-ws needs --coingecko-key: CoinGecko's WebSocket is for paid plans") }
                return WebSocketSource(
                    name: name, codec: CoinGeckoStreamCodec(url: try WebSocketURL(coingeckoWsUrl), key: coingeckoKey, symbolMap: map),
                    symbolMap: map, column: .coingecko)
            case "coingecko-rest":
                return CoinGeckoRESTSource(
                    url: coingeckoUrl, plan: plan, key: coingeckoKey,
                    pollInterval: coingeckoPollInterval.map { .nanoseconds(Int64($0 * 1e9)) }, symbolMap: map)
            default:
                let path = String(name.dropFirst("replay:".count))
                do {
                    return try ReplaySource(path: path, text: try FileReader.readText(path, option: "replay:"))
                } catch let error as ReplaySource.Unreadable {
                    throw CLIError("replay: \(error)")
                }
            }
        }
        var settings = PriceAggregator.Settings(sources: names.map { $0.hasPrefix("replay:") ? "replay" : $0 })
        settings.staleAfterNanoseconds = UInt64(staleAfter * 1e9)
        if mode == "median" {
            settings.mode = .median(maximumDeviation: (DecimalNumber(String(maxDeviation)).flatMap { $0 / DecimalNumber(100) }) ?? DecimalNumber(coefficient: 1, exponent: -2))
        }
        let feed = MarketDataFeed(
            sources: sources, settings: settings, metrics: FeedMetrics(sources: settings.sources, symbols: symbols), logger: logger)
        let unmapped = feed.unmapped(symbols)
        guard unmapped.isEmpty else {
            throw CLIError("no source in \(names.joined(separator: ",")) lists \(unmapped.joined(separator: ", ")): add rows with --symbol-map, or leave them out of --symbols")
        }
        for (source, missing) in feed.gaps(symbols).sorted(by: { $0.key < $1.key }) {
            logger.notice("a source does not list some symbols: the other sources serve them", metadata: [
                "source": "\(source)", "symbols": "\(missing.joined(separator: ","))",
            ])
        }
        return feed
    }
}

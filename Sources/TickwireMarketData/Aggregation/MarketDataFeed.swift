import Logging
import NIOConcurrencyHelpers
import NIOCore
import TickwireFeed
import TickwireProtocol

/// Real market data as a `PriceSource` for `FeedService`: every source runs at once, their
/// quotes go through a `PriceAggregator` (failover or median, staleness, sanity), and what it
/// releases is emitted to the feed's window. A clock ticks every second for silent sources.
public struct MarketDataFeed: PriceSource {
    public let name: String
    let sources: [any MarketDataSource]
    let settings: PriceAggregator.Settings
    let metrics: FeedMetrics
    let logger: Logger

    public init(sources: [any MarketDataSource], settings: PriceAggregator.Settings, metrics: FeedMetrics, logger: Logger) {
        self.sources = sources
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        self.name = sources.map(\.name).joined(separator: ",")
    }

    /// Symbols no source can map: a startup error.
    public func unmapped(_ symbols: [String]) -> [String] {
        symbols.filter { symbol in !sources.contains { !$0.mappable([symbol]).isEmpty } }
    }

    /// For each source, the symbols it does not serve (the others serve them).
    public func gaps(_ symbols: [String]) -> [String: [String]] {
        var gaps: [String: [String]] = [:]
        for source in sources {
            let served = Set(source.mappable(symbols))
            let missing = symbols.filter { !served.contains($0) }
            if !missing.isEmpty { gaps[source.name] = missing }
        }
        return gaps
    }

    public func run(symbols: [String], emit: @escaping @Sendable ([PriceUpdate]) async -> Void) async throws {
        let aggregator = NIOLockedValueBox(PriceAggregator(settings: settings))
        let metrics = self.metrics
        let logger = self.logger
        @Sendable func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
        @Sendable func publish(_ prices: [PriceUpdate]) async {
            guard !prices.isEmpty else { return }
            let inUse = aggregator.withLockedValue { $0.sourcesInUse }
            for price in prices {
                metrics.sourceInUse(inUse[price.symbol], for: price.symbol)
                if price.stale { logger.warning("no fresh source: the last price goes out stale", metadata: ["symbol": "\(price.symbol)"]) }
            }
            await emit(prices)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for source in sources {
                let name = source.name
                group.addTask {
                    // Events of one source arrive one at a time; the box only satisfies the compiler.
                    let wasConnected = NIOLockedValueBox(false)
                    try await source.run(symbols: symbols) { event in
                        switch event {
                        case .connected:
                            if !wasConnected.withLockedValue({ $0 }) { logger.info("source connected", metadata: ["source": "\(name)"]) }
                            wasConnected.withLockedValue { $0 = true }
                            metrics.connected[name]?.record(1)
                            _ = aggregator.withLockedValue { $0.connection(of: name, isUp: true, now: now()) }
                        case .disconnected(let reason):
                            if wasConnected.withLockedValue({ $0 }) { metrics.reconnects[name]?.increment() }
                            logger.warning("source disconnected", metadata: ["source": "\(name)", "reason": "\(reason)"])
                            wasConnected.withLockedValue { $0 = false }
                            metrics.connected[name]?.record(0)
                            await publish(aggregator.withLockedValue { $0.connection(of: name, isUp: false, now: now()) })
                        case .quotes(let quotes):
                            metrics.quotes[name]?.increment(by: Int64(quotes.count))
                            let output = aggregator.withLockedValue { $0.received(quotes, now: now()) }
                            for rejected in output.rejected {
                                metrics.rejected[name]?[rejected.reason]?.increment()
                                logger.notice("quote dropped", metadata: [
                                    "source": "\(name)", "symbol": "\(rejected.symbol)", "reason": "\(rejected.reason.rawValue)",
                                ])
                            }
                            await publish(output.prices)
                        case .unreadable(let text):
                            metrics.unreadable[name]?.increment()
                            logger.debug("unreadable message", metadata: ["source": "\(name)", "message": "\(text)"])
                        }
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(1))
                    let (prices, ages) = aggregator.withLockedValue { ($0.evaluate(now: now()), $0.ageOfNewestQuote(now: now())) }
                    for (symbol, age) in ages { metrics.quoteAge[symbol]?.record(Double(age) / 1e9) }
                    await publish(prices)
                }
            }
            try await group.waitForAll()
        }
    }
}

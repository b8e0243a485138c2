import CoreMetrics

/// The feed's view of its sources, for Prometheus: which are connected, what they sent, what
/// was thrown away, and per symbol how old its newest quote is and which source is in use.
public final class FeedMetrics: Sendable {
    let connected: [String: Gauge]
    let quotes: [String: Counter]
    let unreadable: [String: Counter]
    let reconnects: [String: Counter]
    let rejected: [String: [PriceAggregator.Rejection: Counter]]
    let quoteAge: [String: Gauge]
    let inUse: [String: [String: Gauge]]

    public init(sources: [String], symbols: [String]) {
        func bySource<M>(_ make: (String) -> M) -> [String: M] { Dictionary(uniqueKeysWithValues: sources.map { ($0, make($0)) }) }
        connected = bySource { Gauge(label: "tickwire_feed_source_connected", dimensions: [("source", $0)]) }
        quotes = bySource { Counter(label: "tickwire_feed_quotes_total", dimensions: [("source", $0)]) }
        unreadable = bySource { Counter(label: "tickwire_feed_unreadable_total", dimensions: [("source", $0)]) }
        reconnects = bySource { Counter(label: "tickwire_feed_reconnects_total", dimensions: [("source", $0)]) }
        rejected = bySource { source in
            Dictionary(uniqueKeysWithValues: [PriceAggregator.Rejection.notPositive, .jump].map {
                ($0, Counter(label: "tickwire_feed_rejected_total", dimensions: [("source", source), ("reason", $0.rawValue)]))
            })
        }
        quoteAge = Dictionary(uniqueKeysWithValues: symbols.map {
            ($0, Gauge(label: "tickwire_feed_quote_age_seconds", dimensions: [("symbol", $0)]))
        })
        inUse = Dictionary(uniqueKeysWithValues: symbols.map { symbol in
            (symbol, bySource { Gauge(label: "tickwire_feed_source_in_use", dimensions: [("symbol", symbol), ("source", $0)]) })
        })
        for gauge in connected.values { gauge.record(0) }
    }

    func sourceInUse(_ source: String?, for symbol: String) {
        for (name, gauge) in inUse[symbol] ?? [:] { gauge.record(source?.contains(name) == true ? 1 : 0) }
    }
}

import Testing
import TickwireProtocol

@testable import TickwireMarketData

/// Which source's price goes out, and when it goes out stale.
@Suite struct Aggregation {
    static let second: UInt64 = 1_000_000_000

    func quote(_ source: String, _ price: String, symbol: String = "BTC", change: String? = "1.0") -> Quote {
        Quote(
            symbol: symbol, source: source, price: DecimalNumber(price)!, change24h: change.flatMap { DecimalNumber($0) },
            volume24h: nil, time: Timestamp(millisecondsSinceEpoch: 1_700_000_000_000))
    }

    func aggregator(_ mode: PriceAggregator.Mode = .failover) -> PriceAggregator {
        PriceAggregator(settings: .init(sources: ["coinbase", "kraken", "coingecko-rest"], staleAfterNanoseconds: 10 * Self.second, mode: mode))
    }

    func published(_ prices: [PriceUpdate]) -> [String] {
        prices.map { "\($0.source ?? "-") \($0.priceUSD)\($0.stale ? " stale" : "")" }
    }

    @Test func thePrimaryIsPublishedAndTheOthersWait() {
        var feed = aggregator()
        #expect(published(feed.received([quote("kraken", "100.5")], now: 0).prices) == ["kraken 100.50"], "the best fresh source so far")
        #expect(published(feed.received([quote("coinbase", "100.6")], now: 1).prices) == ["coinbase 100.60"])
        #expect(feed.received([quote("kraken", "100.7")], now: 2).prices.isEmpty, "a lower-priority quote changes nothing")
        #expect(published(feed.received([quote("coinbase", "100.8")], now: 3).prices) == ["coinbase 100.80"])
        #expect(feed.sourcesInUse["BTC"] == "coinbase")
    }

    @Test func whenThePrimaryGoesSilentTheNextTakesOverAndItComesBack() {
        var feed = aggregator()
        _ = feed.received([quote("coinbase", "100"), quote("kraken", "101")], now: 0)
        #expect(feed.evaluate(now: 5 * Self.second).isEmpty)
        _ = feed.received([quote("kraken", "102")], now: 8 * Self.second)
        // Coinbase's last quote is 11 s old: Kraken's newest goes out at once.
        #expect(published(feed.evaluate(now: 11 * Self.second)) == ["kraken 102.00"])
        #expect(published(feed.received([quote("kraken", "103")], now: 12 * Self.second).prices) == ["kraken 103.00"])
        // Coinbase is back: it takes over with its own quote.
        #expect(published(feed.received([quote("coinbase", "104")], now: 13 * Self.second).prices) == ["coinbase 104.00"])
        #expect(feed.received([quote("kraken", "105")], now: 14 * Self.second).prices.isEmpty)
    }

    @Test func aDisconnectFailsOverAtOnce() {
        var feed = aggregator()
        _ = feed.received([quote("coinbase", "100"), quote("kraken", "101")], now: 0)
        #expect(published(feed.connection(of: "coinbase", isUp: false, now: Self.second)) == ["kraken 101.00"])
        #expect(feed.connection(of: "coinbase", isUp: true, now: 2 * Self.second).isEmpty, "it must send a quote first")
    }

    @Test func withNoFreshSourceTheLastPriceGoesOutStaleOnceAndAFreshOneClearsIt() {
        var feed = aggregator()
        _ = feed.received([quote("coinbase", "100")], now: 0)
        #expect(published(feed.evaluate(now: 11 * Self.second)) == ["coinbase 100.00 stale"])
        #expect(feed.evaluate(now: 12 * Self.second).isEmpty, "once")
        #expect(feed.evaluate(now: 30 * Self.second).isEmpty)
        #expect(published(feed.received([quote("kraken", "99")], now: 31 * Self.second).prices) == ["kraken 99.00"])
    }

    @Test func aSourceThatSaysItsPriceIsStaleIsPublishedStale() {
        var feed = aggregator()
        var unsure = quote("coingecko-rest", "100", change: nil)
        unsure.isStaleAtSource = true  // what CoinGecko's null 24 h change becomes
        #expect(published(feed.received([unsure], now: 0).prices) == ["coingecko-rest 100.00 stale"])
    }

    @Test func absurdQuotesAreDroppedAndAConfirmedJumpIsAccepted() {
        var feed = aggregator()
        _ = feed.received([quote("coinbase", "100")], now: 0)
        for price in ["0", "-5"] {
            let output = feed.received([quote("coinbase", price)], now: 1)
            #expect(output.prices.isEmpty && output.rejected.first?.reason == .notPositive)
        }
        for (now, price) in [(2, "1000"), (3, "10"), (4, "1000.01"), (5, "9.99")] as [(UInt64, String)] {
            #expect(feed.received([quote("coinbase", price)], now: now).rejected.first?.reason == .jump, "\(price) is 10x")
        }
        #expect(published(feed.received([quote("coinbase", "101")], now: 6).prices) == ["coinbase 101.00"])
        // Three quotes in a row at the new level: a real move (or a redenomination), accepted.
        #expect(feed.received([quote("coinbase", "2000")], now: 7).rejected.count == 1)
        #expect(feed.received([quote("coinbase", "2001")], now: 8).rejected.count == 1)
        #expect(published(feed.received([quote("coinbase", "2002")], now: 9).prices) == ["coinbase 2002.00"])
    }

    @Test func medianModeIgnoresAnOutlier() {
        var feed = aggregator(.median(maximumDeviation: DecimalNumber("0.01")!))
        _ = feed.received([quote("coinbase", "100.0"), quote("kraken", "100.4")], now: 0)
        let prices = feed.received([quote("coingecko-rest", "150")], now: 1).prices
        #expect(published(prices) == ["median(coinbase,kraken) 100.20"], "150 is 49% off the median of 100.4")
        let agreeing = feed.received([quote("coingecko-rest", "100.1")], now: 2).prices
        #expect(published(agreeing) == ["median(coinbase,kraken,coingecko-rest) 100.10"])
    }
}

import TickwireProtocol

/// Which price of which source the feed publishes, as a value: quotes, connection changes and
/// clock ticks in, prices to publish out. Times are a monotonic clock in nanoseconds.
///
/// - A source is **fresh** for a symbol while it is connected and its last quote of it is at
///   most `staleAfter` old.
/// - **Failover** (the default): the highest-priority fresh source is published; when it goes
///   silent or disconnects the next one takes over at once, and when it comes back it takes
///   over again. **Median**: the median of the fresh sources, ignoring any more than
///   `maximumDeviation` away from it.
/// - When no source is fresh, the last price is published once more with `stale: true`; the
///   next fresh quote clears it.
/// - A quote that is not positive, or 10x or more away from its source's last one, is dropped and
///   reported (`Output.rejected`); a jump that three quotes in a row confirm is a real move.
public struct PriceAggregator: Sendable {
    public enum Mode: Sendable, Equatable {
        case failover
        /// `maximumDeviation` is a fraction: 0.01 ignores quotes more than 1% from the median.
        case median(maximumDeviation: DecimalNumber)
    }

    public struct Settings: Sendable {
        /// Source names, highest priority first.
        public var sources: [String]
        public var staleAfterNanoseconds: UInt64
        public var mode: Mode

        public init(sources: [String], staleAfterNanoseconds: UInt64 = 90_000_000_000, mode: Mode = .failover) {
            self.sources = sources
            self.staleAfterNanoseconds = staleAfterNanoseconds
            self.mode = mode
        }
    }

    public enum Rejection: String, Sendable, Equatable {
        /// Zero or negative.
        case notPositive = "not_positive"
        /// 10x or more up or down from the source's last quote, unconfirmed.
        case jump
    }

    public struct Output: Sendable, Equatable {
        public var prices: [PriceUpdate] = []
        public var rejected: [(source: String, symbol: String, reason: Rejection)] = []

        public static func == (lhs: Output, rhs: Output) -> Bool {
            lhs.prices == rhs.prices && lhs.rejected.map { "\($0)" } == rhs.rejected.map { "\($0)" }
        }
    }

    struct Received {
        var quote: Quote
        var at: UInt64
    }

    /// A jump waiting for confirmation: its level and how many quotes agreed.
    struct Suspect {
        var price: DecimalNumber
        var confirmations: Int
    }

    struct SymbolState {
        var latest: [String: Received] = [:]
        var suspects: [String: Suspect] = [:]
        /// What was published last, and whether it was the stale repeat.
        var published: PriceUpdate?
        /// The source (or `median`) behind the last published price.
        var inUse: String?
    }

    public let settings: Settings
    private var states: [String: SymbolState] = [:]
    private var disconnected: Set<String> = []

    public init(settings: Settings) {
        self.settings = settings
    }

    /// The source behind each symbol's last published price (`median(...)` in median mode).
    public var sourcesInUse: [String: String] { states.compactMapValues(\.inUse) }

    /// Nanoseconds since each symbol's newest quote from any source.
    public func ageOfNewestQuote(now: UInt64) -> [String: UInt64] {
        states.compactMapValues { state in state.latest.values.map(\.at).max().map { now &- $0 } }
    }

    // MARK: Events

    public mutating func received(_ quotes: [Quote], now: UInt64) -> Output {
        var output = Output()
        for quote in quotes {
            if let reason = admit(quote) {
                output.rejected.append((quote.source, quote.symbol, reason))
                continue
            }
            states[quote.symbol, default: SymbolState()].latest[quote.source] = Received(quote: quote, at: now)
            if let price = decide(quote.symbol, now: now, trigger: quote.source) { output.prices.append(price) }
        }
        return output
    }

    /// A source connected or lost its connection; losing it fails over at once.
    public mutating func connection(of source: String, isUp: Bool, now: UInt64) -> [PriceUpdate] {
        if isUp {
            disconnected.remove(source)
            return []
        }
        disconnected.insert(source)
        return evaluate(now: now)
    }

    /// The clock: sources that went silent hand over, or the price goes stale.
    public mutating func evaluate(now: UInt64) -> [PriceUpdate] {
        states.keys.sorted().compactMap { decide($0, now: now, trigger: nil) }
    }

    // MARK: Rules

    /// Nil when the quote may be used; else why not.
    private mutating func admit(_ quote: Quote) -> Rejection? {
        guard !quote.price.isNegative, !quote.price.isZero else { return .notPositive }
        guard let last = states[quote.symbol]?.latest[quote.source]?.quote.price else { return nil }
        let ten = DecimalNumber(10)
        guard quote.price >= last * ten || quote.price * ten <= last else {
            states[quote.symbol]?.suspects[quote.source] = nil
            return nil
        }
        var suspect = states[quote.symbol]?.suspects[quote.source] ?? Suspect(price: quote.price, confirmations: 0)
        if (quote.price - suspect.price).magnitude * DecimalNumber(100) <= suspect.price {
            suspect.confirmations += 1
        } else {
            suspect = Suspect(price: quote.price, confirmations: 1)
        }
        if suspect.confirmations >= 3 {
            states[quote.symbol]?.suspects[quote.source] = nil
            return nil
        }
        states[quote.symbol]?.suspects[quote.source] = suspect
        return .jump
    }

    private func isFresh(_ received: Received, from source: String, now: UInt64) -> Bool {
        !disconnected.contains(source) && now &- received.at <= settings.staleAfterNanoseconds
    }

    /// The fresh quotes of a symbol, highest priority first.
    private func fresh(_ state: SymbolState, now: UInt64) -> [Quote] {
        settings.sources.compactMap { source in
            state.latest[source].flatMap { isFresh($0, from: source, now: now) ? $0.quote : nil }
        }
    }

    /// What to publish for `symbol` now, if anything. `trigger` is the source whose quote just
    /// arrived (nil on the clock).
    private mutating func decide(_ symbol: String, now: UInt64, trigger: String?) -> PriceUpdate? {
        guard var state = states[symbol] else { return nil }
        defer { states[symbol] = state }
        let candidates = fresh(state, now: now)
        let next: (price: PriceUpdate, inUse: String)?
        switch settings.mode {
        case .failover:
            next = candidates.first.flatMap { chosen in
                // A lower-priority source's quote changes nothing while a better one is fresh; on the
                // clock, only a change of source (a failover or a failback) publishes.
                guard trigger == chosen.source || (trigger == nil && state.inUse != chosen.source) else { return nil }
                return (chosen.priceUpdate(stale: chosen.isStaleAtSource), chosen.source)
            }
        case .median(let maximumDeviation):
            next = Self.median(candidates, maximumDeviation: maximumDeviation).flatMap { median in
                guard trigger != nil || state.inUse != median.inUse else { return nil }
                return median
            }
        }
        if let next {
            state.published = next.price
            state.inUse = next.inUse
            return next.price
        }
        // Nothing fresh at all: say so once, with the last price.
        guard candidates.isEmpty, var last = state.published, !last.stale else { return nil }
        last.stale = true
        state.published = last
        return last
    }

    /// The median of `quotes` after dropping those more than `maximumDeviation` from the median of all;
    /// the change and volume come from the highest-priority quote kept.
    static func median(_ quotes: [Quote], maximumDeviation: DecimalNumber) -> (price: PriceUpdate, inUse: String)? {
        guard let first = quotes.first else { return nil }
        let center = middle(quotes.map(\.price))
        let kept = quotes.filter { (($0.price - center).magnitude / center).map { $0 <= maximumDeviation } ?? false }
        let used = kept.isEmpty ? [first] : kept
        let price = middle(used.map(\.price))
        let newest = used.max { $0.time < $1.time } ?? used[0]
        var update = used[0].priceUpdate(price: price, source: "median(" + used.map(\.source).joined(separator: ",") + ")", stale: false)
        update.timestamp = newest.time
        return (update, update.source ?? "median")
    }

    static func middle(_ prices: [DecimalNumber]) -> DecimalNumber {
        let sorted = prices.sorted()
        let half = sorted.count / 2
        guard sorted.count % 2 == 0 else { return sorted[half] }
        return ((sorted[half - 1] + sorted[half]) / DecimalNumber(2)) ?? sorted[half]
    }
}

import TickwireProtocol

/// One price as a source reported it, normalised: Tickwire's symbol, the source's own digits
/// (never through a binary float), the 24 h change in percent and the 24 h volume in USD.
public struct Quote: Sendable, Equatable {
    public var symbol: String
    /// The source's name (`coinbase`, `kraken`, ...), as `--source` lists it.
    public var source: String
    public var price: DecimalNumber
    /// Percent; nil when the source does not say.
    public var change24h: DecimalNumber?
    /// In USD (a quote currency taken as USD, such as Binance's USDT, is documented as such).
    public var volume24h: DecimalNumber?
    /// When the source priced it.
    public var time: Timestamp
    /// The source itself flags the price as not current (CoinGecko's `null` 24 h change).
    public var isStaleAtSource = false

    public init(
        symbol: String, source: String, price: DecimalNumber, change24h: DecimalNumber?, volume24h: DecimalNumber?,
        time: Timestamp, isStaleAtSource: Bool = false
    ) {
        self.symbol = symbol
        self.source = source
        self.price = price
        self.change24h = change24h
        self.volume24h = volume24h
        self.time = time
        self.isStaleAtSource = isStaleAtSource
    }

    /// The `price_update` a gateway sends: the price with up to 8 significant digits and at least 2
    /// decimals, the change with 2 decimals, the volume in whole cents.
    func priceUpdate(price: DecimalNumber? = nil, source: String? = nil, stale: Bool) -> PriceUpdate {
        PriceUpdate(
            symbol: symbol,
            priceUSD: (price ?? self.price).formatted(significantDigits: 8, minimumFractionDigits: 2),
            change24h: (change24h ?? .zero).formatted(fractionDigits: 2),
            volume24h: volume24h.map { $0.formatted(fractionDigits: 2) },
            timestamp: time, source: source ?? self.source, stale: stale)
    }
}

import TickwireProtocol

/// A random walk from realistic starting prices, one tick per symbol per `tickInterval`,
/// with a 24 h change against a simulated opening price and a drifting volume.
public struct SimulatedPriceSource: PriceSource {
    public let name = "simulated"
    public let tickInterval: Duration
    /// Standard deviation of one tick's relative move.
    public let volatility: Double

    public init(tickInterval: Duration = .seconds(1), volatility: Double = 0.0008) {
        self.tickInterval = tickInterval
        self.volatility = volatility
    }

    /// Rough late-2026 prices; unknown symbols start at 1.
    public static let startingPrices: [String: Double] = [
        "BTC": 90_000, "ETH": 3_200, "SOL": 140, "XLM": 0.33, "XRP": 2.2, "BNB": 850, "ADA": 0.65,
        "DOGE": 0.17, "TRX": 0.28, "TON": 3.0, "AVAX": 22, "DOT": 4.5, "LINK": 14, "LTC": 85, "BCH": 450,
        "UNI": 7.5, "ATOM": 4.2, "NEAR": 2.5, "SHIB": 0.00001, "USDT": 1.0, "USDC": 1.0, "POL": 0.4,
    ]

    /// Typical 24 h trading volumes in USD; unknown symbols get 100 M.
    public static let typicalVolumes: [String: Double] = [
        "BTC": 35e9, "ETH": 18e9, "USDT": 60e9, "USDC": 8e9, "SOL": 3e9, "XRP": 2.5e9, "BNB": 1.5e9,
        "DOGE": 1.2e9, "ADA": 6e8, "TRX": 5e8, "TON": 2e8, "AVAX": 4e8, "DOT": 2e8, "LINK": 5e8, "LTC": 4e8,
        "BCH": 3e8, "UNI": 2e8, "ATOM": 1.2e8, "NEAR": 2e8, "SHIB": 3e8, "XLM": 1.5e8, "POL": 1e8,
    ]

    /// The default symbol list of `tickwire serve` and `tickwire feed`.
    public static let defaultSymbols = [
        "BTC", "ETH", "SOL", "XLM", "XRP", "BNB", "ADA", "DOGE", "TRX", "TON", "AVAX", "DOT", "LINK", "LTC",
        "BCH", "UNI", "ATOM", "NEAR", "SHIB", "USDT",
    ]

    struct Walk {
        var price: Double
        let open24h: Double
        var volume: Double
        let stable: Bool
    }

    public func run(symbols: [String], emit: @escaping @Sendable ([PriceUpdate]) async -> Void) async throws {
        var generator = SystemRandomNumberGenerator()
        var walks = symbols.map { symbol -> Walk in
            let start = Self.startingPrices[symbol] ?? 1.0
            let stable = symbol == "USDT" || symbol == "USDC"
            let drift = stable ? 0 : Double.random(in: -0.05...0.05, using: &generator)
            return Walk(
                price: start, open24h: start / (1 + drift),
                volume: (Self.typicalVolumes[symbol] ?? 1e8) * Double.random(in: 0.8...1.2, using: &generator),
                stable: stable)
        }
        while !Task.isCancelled {
            let now = Timestamp.now()
            var tick: [PriceUpdate] = []
            for index in walks.indices {
                let step = (walks[index].stable ? volatility / 20 : volatility) * Self.gaussian(&generator)
                walks[index].price *= (1 + step)
                walks[index].volume *= 1 + Double.random(in: -0.002...0.002, using: &generator)
                tick.append(Self.price(symbol: symbols[index], walk: walks[index], at: now, source: name))
            }
            await emit(tick)
            try await Task.sleep(for: tickInterval)
        }
    }

    static func price(symbol: String, walk: Walk, at now: Timestamp, source: String) -> PriceUpdate {
        let change = (walk.price / walk.open24h - 1) * 100
        return PriceUpdate(
            symbol: symbol,
            priceUSD: formatPrice(walk.price),
            change24h: DecimalString.format(change, significantDigits: 3, minimumFractionDigits: 1),
            volume24h: DecimalString.format(walk.volume.rounded(), significantDigits: 15, minimumFractionDigits: 2),
            timestamp: now, source: source)
    }

    /// Two decimals and up to eight significant digits above 1 (`"90123.45"`); four significant digits below
    /// (`"0.00001234"`, `"0.3300"`), as exchanges quote them.
    public static func formatPrice(_ price: Double) -> String {
        price >= 1
            ? DecimalString.format(price, significantDigits: 8, minimumFractionDigits: 2)
            : DecimalString.format(price, significantDigits: 4)
    }

    /// Box-Muller.
    static func gaussian(_ generator: inout SystemRandomNumberGenerator) -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &generator)
        let u2 = Double.random(in: 0..<1, using: &generator)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

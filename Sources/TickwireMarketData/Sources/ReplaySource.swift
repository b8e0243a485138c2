import TickwireProtocol

/// `replay:FILE`: a JSON-lines file of normalised ticks (each line a `price_update` data object:
/// `symbol`, `price_usd`, `price_change_24h`, `volume_24h`, `timestamp`), played back with the
/// spacing of their timestamps (gaps capped at a minute), stamped with the time they are played.
/// For demos, tests and incident replays. The source disconnects at the end of the file.
public struct ReplaySource: MarketDataSource {
    public let name = "replay"
    public let path: String
    let ticks: [Quote]

    public struct Unreadable: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads and checks the whole file first: a bad line is a startup error naming it.
    public init(path: String, text: String) throws(Unreadable) {
        self.path = path
        var ticks: [Quote] = []
        for (index, line) in text.split(whereSeparator: \.isNewline).enumerated() where !line.trimmingWhitespace().isEmpty {
            guard case .object(let object)? = try? JSONParser.parse(Array(line.utf8)),
                let price = try? PriceUpdate(json: object, receivedAt: .now()), let value = DecimalNumber(price.priceUSD)
            else { throw Unreadable(description: "\(path) line \(index + 1) is not a price_update object with a decimal price_usd") }
            ticks.append(Quote(
                symbol: price.symbol, source: "replay", price: value, change24h: DecimalNumber(price.change24h),
                volume24h: price.volume24h.flatMap(DecimalNumber.init), time: price.timestamp))
        }
        guard !ticks.isEmpty else { throw Unreadable(description: "\(path) holds no ticks") }
        self.ticks = ticks
    }

    public func mappable(_ symbols: [String]) -> [String] {
        let present = Set(ticks.map(\.symbol))
        return symbols.filter(present.contains)
    }

    public func run(symbols: [String], report: @escaping @Sendable (SourceEvent) async -> Void) async throws {
        let wanted = Set(symbols)
        await report(.connected)
        var previous: Timestamp?
        for tick in ticks where wanted.contains(tick.symbol) {
            if let previous {
                let gap = min(60_000, max(0, tick.time.millisecondsSinceEpoch - previous.millisecondsSinceEpoch))
                if gap > 0 { try await Task.sleep(for: .milliseconds(gap)) }
            }
            previous = tick.time
            var played = tick
            played.time = .now()
            await report(.quotes([played]))
        }
        await report(.disconnected(reason: "the replay of \(path) is over"))
        try await Task.sleep(for: .seconds(365 * 86_400))  // stay quiet, as a source that ended does
    }
}

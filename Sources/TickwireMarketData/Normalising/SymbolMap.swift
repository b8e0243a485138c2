import TickwireProtocol

/// What each market-data source calls a Tickwire symbol: a CoinGecko coin id, a Coinbase
/// Exchange product, a Kraken v2 pair, a Binance symbol. One row per symbol, as a CSV table:
///
///     symbol,coingecko,coinbase,kraken,binance
///     BTC,bitcoin,BTC-USD,BTC/USD,btcusdt
///     TRX,tron,-,TRX/USD,trxusdt
///
/// `-` (or an empty cell) means the source does not list the symbol. `--symbol-map FILE`
/// replaces the built-in rows of the symbols it names and adds new ones.
public struct SymbolMap: Sendable, Equatable {
    public enum Column: String, Sendable, CaseIterable {
        case coingecko, coinbase, kraken, binance
    }

    public private(set) var rows: [String: [Column: String]] = [:]

    /// Why a symbol map cannot be read, with the line that says so.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public init() {}

    /// The name `column` gives `symbol`, if it lists it.
    public func name(of symbol: String, in column: Column) -> String? {
        rows[symbol]?[column]
    }

    /// One source's names both ways: what to ask it for, and whose price its answer is.
    public struct Names: Sendable {
        /// Symbol to the source's name.
        public fileprivate(set) var bySymbol: [String: String] = [:]
        /// The source's name to the symbol.
        public fileprivate(set) var symbolByName: [String: String] = [:]

        /// The source's names for `symbols` it lists, in order.
        public func names(of symbols: [String]) -> [String] { symbols.compactMap { bySymbol[$0] } }
    }

    /// `column`'s names, each passed through `normalise` (Binance's streams are lower case,
    /// whatever case the map's row has).
    public func names(in column: Column, normalise: (String) -> String = { $0 }) -> Names {
        var names = Names()
        for (symbol, row) in rows {
            guard let name = row[column].map(normalise) else { continue }
            names.bySymbol[symbol] = name
            names.symbolByName[name] = symbol
        }
        return names
    }

    /// Reads the CSV table; the header names the columns (in any order, `symbol` first).
    public init(csv text: String) throws(ParseError) {
        var lines = text.split(whereSeparator: \.isNewline).enumerated()
            .map { ($0.offset + 1, $0.element.trimmingWhitespace()) }
            .filter { !$0.1.isEmpty && !$0.1.hasPrefix("#") }[...]
        guard let (_, header) = lines.popFirst() else { throw ParseError(description: "the symbol map is empty") }
        let names = header.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingWhitespace().lowercased() }
        guard names.first == "symbol" else {
            throw ParseError(description: "the symbol map's header must start with symbol, e.g. symbol,coingecko,coinbase,kraken,binance")
        }
        var columns: [Column] = []
        for name in names.dropFirst() {
            guard let column = Column(rawValue: name) else {
                throw ParseError(description: "unknown column \"\(name)\": use coingecko, coinbase, kraken, binance")
            }
            columns.append(column)
        }
        for (number, line) in lines {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingWhitespace() }
            guard cells.count == columns.count + 1 else {
                throw ParseError(description: "line \(number): \(cells.count) cells for \(columns.count + 1) columns")
            }
            guard let symbol = Symbol.normalize(cells[0]) else {
                throw ParseError(description: "line \(number): \"\(cells[0])\" is not a symbol")
            }
            var row: [Column: String] = [:]
            for (column, cell) in zip(columns, cells.dropFirst()) where !cell.isEmpty && cell != "-" {
                row[column] = cell
            }
            rows[symbol] = row
        }
    }

    /// This map with `overrides`' rows in place of its own.
    public func merging(_ overrides: SymbolMap) -> SymbolMap {
        var merged = self
        merged.rows.merge(overrides.rows) { $1 }
        return merged
    }

    /// The default symbols' rows. Listings change: check a source's product list when in doubt,
    /// and override a row with `--symbol-map`.
    public static let builtIn = try! SymbolMap(csv: """
        symbol,coingecko,coinbase,kraken,binance
        BTC,bitcoin,BTC-USD,BTC/USD,btcusdt
        ETH,ethereum,ETH-USD,ETH/USD,ethusdt
        SOL,solana,SOL-USD,SOL/USD,solusdt
        XLM,stellar,XLM-USD,XLM/USD,xlmusdt
        XRP,ripple,XRP-USD,XRP/USD,xrpusdt
        BNB,binancecoin,-,BNB/USD,bnbusdt
        ADA,cardano,ADA-USD,ADA/USD,adausdt
        DOGE,dogecoin,DOGE-USD,DOGE/USD,dogeusdt
        TRX,tron,-,TRX/USD,trxusdt
        TON,the-open-network,-,TON/USD,tonusdt
        AVAX,avalanche-2,AVAX-USD,AVAX/USD,avaxusdt
        DOT,polkadot,DOT-USD,DOT/USD,dotusdt
        LINK,chainlink,LINK-USD,LINK/USD,linkusdt
        LTC,litecoin,LTC-USD,LTC/USD,ltcusdt
        BCH,bitcoin-cash,BCH-USD,BCH/USD,bchusdt
        UNI,uniswap,UNI-USD,UNI/USD,uniusdt
        ATOM,cosmos,ATOM-USD,ATOM/USD,atomusdt
        NEAR,near,NEAR-USD,NEAR/USD,nearusdt
        SHIB,shiba-inu,SHIB-USD,SHIB/USD,shibusdt
        USDT,tether,USDT-USD,USDT/USD,-
        USDC,usd-coin,-,USDC/USD,usdcusdt
        POL,polygon-ecosystem-token,POL-USD,POL/USD,polusdt
        APT,aptos,APT-USD,APT/USD,aptusdt
        ARB,arbitrum,ARB-USD,ARB/USD,arbusdt
        OP,optimism,OP-USD,OP/USD,opusdt
        """)
}

import NIOCore
import TickwireProtocol

/// Coinbase Exchange's market-data feed (`wss://ws-feed.exchange.coinbase.com`, no key): the
/// `ticker_batch` channel (a ticker at most every 5 s, our window) and `heartbeat` (one per
/// product per second: the liveness watchdog). Prices are JSON strings; the 24 h change is
/// derived from `open_24h`, the USD volume from `volume_24h` (base units) times the price.
public struct CoinbaseCodec: WebSocketSourceCodec {
    public static let defaultURL = "wss://ws-feed.exchange.coinbase.com"
    let base: WebSocketURL
    let names: SymbolMap.Names

    public init(url: WebSocketURL, symbolMap: SymbolMap) {
        self.base = url
        self.names = symbolMap.names(in: .coinbase)
    }

    public func url(for symbols: [String]) -> WebSocketURL { base }
    public var headers: [(String, String)] { [] }
    /// A connection silent this long is dead (the source's heartbeat or ping cadence, with margin).
    public var idleTimeout: TimeAmount = .seconds(10)

    public func opening(for symbols: [String]) -> [String] {
        let ids = names.names(of: symbols).map { JSONValue.string($0) }
        return [JSONValue.object(["type": "subscribe", "product_ids": .array(ids), "channels": ["ticker_batch", "heartbeat"]]).jsonText]
    }

    public func read(_ message: String, symbols _: [String], received: Timestamp) -> [CodecOutput] {
        guard let object = ProviderMessage.object(message), let type = object["type"]?.stringValue else {
            return [.unreadable("coinbase: not a message: \(message.prefix(200))")]
        }
        switch type {
        case "ticker":
            guard let product = object["product_id"]?.stringValue, let symbol = names.symbolByName[product],
                let price = object["price"]?.decimal
            else { return [.unreadable("coinbase: a ticker without product or price: \(message.prefix(200))")] }
            let open = object["open_24h"]?.decimal
            let change = open.flatMap { open in ((price - open) / open).map { $0 * DecimalNumber(100) } }
            let volume = object["volume_24h"]?.decimal.map { $0 * price }
            let time = object["time"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) ?? received
            return [.quote(Quote(symbol: symbol, source: "coinbase", price: price, change24h: change, volume24h: volume, time: time))]
        case "heartbeat", "subscriptions":
            return [.ignored]
        case "error":
            let text = [object["message"]?.stringValue, object["reason"]?.stringValue].compactMap { $0 }.joined(separator: ": ")
            return [.providerError("coinbase: \(text)")]
        default:
            return [.ignored]  // "Clients are expected to ignore messages they do not support."
        }
    }
}
